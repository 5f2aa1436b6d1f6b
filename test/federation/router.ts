/**
 * A real federated graph for the tests: an accounts subgraph (it owns `User { id name }` and
 * `Query.team(size:)`), composed with this gateway's subgraph SDL by
 * `@theguild/federation-composition`, and served by Hive Gateway in-process. The router
 * forwards the caller's `Authorization` header to every subgraph, as the README shows.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { createGatewayRuntime } from '@graphql-hive/gateway-runtime';
import { composeServices, compositionHasErrors } from '@theguild/federation-composition';
import { parse } from 'graphql';
import { createYoga } from 'graphql-yoga';
import { printSubgraphSDL } from '../../src/schema/sdl.js';

const ACCOUNTS_SDL = /* GraphQL */ `
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.6", import: ["@key"])

  type User @key(fields: "id") {
    id: ID!
    name: String!
  }

  type Query {
    "The first \`size\` accounts: u0, u1, ..."
    team(size: Int!): [User!]!
  }
`;

export const accountId = (i: number) => `u${i}`;
export const accountName = (id: string) => `Name of ${id}`;

export interface Router {
  url: string;
  close(): Promise<void>;
}

/** Starts the accounts subgraph and a Hive Gateway over it and the tags gateway at `tagsUrl`. */
export async function startRouter(tagsUrl: string): Promise<Router> {
  const accounts = createYoga({
    schema: buildSubgraphSchema({
      typeDefs: parse(ACCOUNTS_SDL),
      resolvers: {
        Query: {
          team: (_: unknown, { size }: { size: number }) =>
            Array.from({ length: size }, (_, i) => accountId(i)).map((id) => ({ id })),
        },
        User: {
          __resolveReference: ({ id }: { id: string }) => ({ id }),
          name: ({ id }: { id: string }) => accountName(id),
        },
      },
    }),
    logging: false,
    maskedErrors: false,
  });
  const accountsServer = await listen(createServer(accounts));

  const composed = composeServices([
    { name: 'accounts', typeDefs: parse(ACCOUNTS_SDL), url: `${accountsServer.url}/graphql` },
    { name: 'tags', typeDefs: parse(printSubgraphSDL()), url: `${tagsUrl}/graphql` },
  ]);
  if (compositionHasErrors(composed))
    throw new Error(`composition failed: ${composed.errors.map((e) => e.message).join('; ')}`);

  const gateway = createGatewayRuntime({
    supergraph: composed.supergraphSdl,
    logging: false,
    // What a deployment does so that the tags gateway checks the caller's own token.
    propagateHeaders: {
      fromClientToSubgraphs: ({ request }) => ({ authorization: request.headers.get('authorization') }),
    },
  });
  const routerServer = await listen(createServer(gateway));
  return {
    url: routerServer.url,
    close: async () => {
      await gateway.dispose();
      await routerServer.close();
      await accountsServer.close();
    },
  };
}

async function listen(server: Server): Promise<{ url: string; close(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
