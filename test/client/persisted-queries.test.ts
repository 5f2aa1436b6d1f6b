/**
 * Issue 13: automatic persisted queries, with Apollo Client's persisted-query link and with raw
 * GETs: hash-only after the first request, the not-found code, a fleet of two gateways sharing
 * hashes through Redis, and a persisted document still held to every limit and to auth.
 */
import { createHash, randomUUID } from 'node:crypto';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql, type TypedDocumentNode } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';
import { Client, fetchExchange } from '@urql/core';
import { persistedExchange } from '@urql/exchange-persisted';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TimEmulator } from '../../src/emulator/index.js';
import { ADMIN, callsOf, startRig, type GraphQLResponse, type TestRig } from '../helpers/gateway.js';
import { dropRedisKeys, uniqueSdkappid } from '../helpers/process.js';
import { AUDIENCE, bearer, ISSUER, JWT_SECRET, token } from '../security/tokens.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const sha256 = (document: string) => createHash('sha256').update(document).digest('hex');
const seed = [
  { To_Account: 'alice', Tags: ['a', 'b'] },
  { To_Account: 'bob', Tags: ['c'] },
];

/** A request as the persisted-query protocol sends it: the hash, with or without the document. */
async function persisted(
  url: string,
  {
    method,
    hash,
    query,
    headers = {},
  }: { method: 'GET' | 'POST'; hash: string; query?: string; headers?: Record<string, string> },
): Promise<GraphQLResponse> {
  const extensions = { persistedQuery: { version: 1, sha256Hash: hash } };
  const accept = { accept: 'application/graphql-response+json, application/json' };
  const res =
    method === 'GET'
      ? await fetch(
          `${url}/graphql?${new URLSearchParams({ ...(query ? { query } : {}), extensions: JSON.stringify(extensions) })}`,
          {
            headers: { ...accept, ...headers },
          },
        )
      : await fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { ...accept, 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ query, extensions }),
        });
  const body = await res.text();
  const parsed = JSON.parse(body) as Pick<GraphQLResponse, 'data' | 'errors'>;
  return { status: res.status, headers: res.headers, data: parsed.data, errors: parsed.errors, body };
}

/** A unique document, so that no other test (or an earlier run, through Redis) has its hash already. */
const uniqueQuery = (selection = 'user(id: "alice") { id tags }') =>
  `query Q_${randomUUID().replaceAll('-', '')} { ${selection} }`;

describe('one gateway', () => {
  let rig: TestRig;
  beforeAll(async () => {
    rig = await startRig({ emulator: { seed } });
  });
  afterAll(() => rig.close());
  beforeEach(() => rig.emulator.resetCalls());

  describe("Apollo Client's persisted-query link", () => {
    const sent: Array<{ method: string; url: string; body: string | undefined }> = [];
    const clientFor = (useGETForHashedQueries: boolean) =>
      new ApolloClient({
        cache: new InMemoryCache(),
        defaultOptions: { query: { fetchPolicy: 'network-only' } },
        link: ApolloLink.from([
          new PersistedQueryLink({ sha256, useGETForHashedQueries }),
          new HttpLink({
            uri: `${rig.url}/graphql`,
            fetch: async (input, init) => {
              sent.push({ method: init?.method ?? 'GET', url: String(input), body: init?.body as string | undefined });
              return fetch(input, init);
            },
          }),
        ]),
      });
    const USERS: TypedDocumentNode<{ users: Array<{ id: string; tags: string[] | null }> }, { ids: string[] }> = gql`
      query PersistedUsers($ids: [ID!]!) {
        users(ids: $ids) {
          id
          tags
        }
      }
    `;
    beforeEach(() => {
      sent.length = 0;
    });

    it('sends the document once, then only its hash (POST)', async () => {
      const client = clientFor(false);
      const first = await client.query({ query: USERS, variables: { ids: ['alice', 'bob'] } });
      expect(first.data).toEqual({
        users: [
          { __typename: 'User', id: 'alice', tags: ['a', 'b'] },
          { __typename: 'User', id: 'bob', tags: ['c'] },
        ],
      });
      // The hash alone (unknown: PERSISTED_QUERY_NOT_FOUND), then the document with its hash.
      expect(sent.map((s) => JSON.parse(s.body!).query === undefined)).toEqual([true, false]);
      sent.length = 0;
      const again = await client.query({ query: USERS, variables: { ids: ['bob'] } });
      expect(again.data?.users).toEqual([{ __typename: 'User', id: 'bob', tags: ['c'] }]);
      expect(sent).toHaveLength(1);
      expect(JSON.parse(sent[0]!.body!)).not.toHaveProperty('query');
    });

    it('sends hash-only requests by GET with useGETForHashedQueries', async () => {
      await clientFor(false).query({ query: USERS, variables: { ids: ['alice'] } });
      sent.length = 0;
      const res = await clientFor(true).query({ query: USERS, variables: { ids: ['alice'] } });
      expect(res.data?.users).toEqual([{ __typename: 'User', id: 'alice', tags: ['a', 'b'] }]);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.method).toBe('GET');
      expect(new URL(sent[0]!.url).searchParams.has('query')).toBe(false);
    });
  });

  it("works with urql's persistedExchange: the document once, then hash-only GETs", async () => {
    const sent: Array<{ method: string; url: string }> = [];
    const client = new Client({
      url: `${rig.url}/graphql`,
      exchanges: [persistedExchange({ preferGetForPersistedQueries: true }), fetchExchange],
      requestPolicy: 'network-only',
      fetch: async (input, init) => {
        sent.push({ method: init?.method ?? 'GET', url: String(input) });
        return fetch(input, init);
      },
    });
    const query = uniqueQuery();
    const first = await client.query(query, {}).toPromise();
    expect(first.error).toBeUndefined();
    expect(first.data).toEqual({ user: { id: 'alice', tags: ['a', 'b'] } });
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(new URL(sent[0]!.url).searchParams.has('query')).toBe(false);
    sent.length = 0;
    const again = await client.query(query, {}).toPromise();
    expect(again.data).toEqual({ user: { id: 'alice', tags: ['a', 'b'] } });
    expect(sent).toEqual([{ method: 'GET', url: expect.not.stringContaining('query=') }]);
  });

  it('answers an unknown hash PERSISTED_QUERY_NOT_FOUND, by GET and by POST, with no upstream call', async () => {
    for (const method of ['GET', 'POST'] as const) {
      const res = await persisted(rig.url, { method, hash: sha256(uniqueQuery()) });
      expect(res.status).toBe(404);
      expect(res.errors).toEqual([
        expect.objectContaining({
          message: 'PersistedQueryNotFound',
          extensions: { code: 'PERSISTED_QUERY_NOT_FOUND' },
        }),
      ]);
    }
    expect(rig.emulator.calls).toEqual([]);
  });

  it('learns a document sent by GET, and serves its hash alone by GET', async () => {
    const query = uniqueQuery();
    const hash = sha256(query);
    expect((await persisted(rig.url, { method: 'GET', hash, query })).data).toEqual({
      user: { id: 'alice', tags: ['a', 'b'] },
    });
    const res = await persisted(rig.url, { method: 'GET', hash });
    expect(res.status).toBe(200);
    expect(res.data).toEqual({ user: { id: 'alice', tags: ['a', 'b'] } });
  });

  it('refuses a document that does not hash to the hash sent', async () => {
    const res = await persisted(rig.url, { method: 'POST', hash: sha256('{ __typename }'), query: uniqueQuery() });
    expect(res.status).toBe(400);
    expect(res.errors?.[0]?.extensions?.code).toBe('PERSISTED_QUERY_MISMATCH');
    expect(rig.emulator.calls).toEqual([]);
  });

  it('still runs only queries by GET: a persisted mutation sent as a hash-only GET is refused', async () => {
    const mutation = `mutation M_${randomUUID().replaceAll('-', '')} { addUserTags(input: [{ id: "carol", tags: ["x"] }]) { id } }`;
    const hash = sha256(mutation);
    expect((await persisted(rig.url, { method: 'POST', hash, query: mutation })).errors).toBeUndefined();
    rig.emulator.resetCalls();
    const res = await persisted(rig.url, { method: 'GET', hash });
    expect(res.status).toBe(405);
    expect(rig.emulator.calls).toEqual([]);
  });

  it('holds a persisted document to the depth and alias limits on every request', async () => {
    const deep = `{ user(id: "alice") ${'{ tags '.repeat(20)}${'}'.repeat(20)} }`;
    const aliased = `{ ${Array.from({ length: 40 }, (_, i) => `a${i}: user(id: "u${i}") { tags }`).join(' ')} }`;
    for (const [query, refusal] of [
      [deep, /depth limit of 8 exceeded/],
      [aliased, /Aliases limit of 30 exceeded/],
    ] as const) {
      const hash = sha256(query);
      const full = await persisted(rig.url, { method: 'POST', hash, query });
      expect(full.status).toBe(400);
      expect(full.errors?.map((e) => e.message).join('\n')).toMatch(refusal);
      // The document may now be known by its hash; the hash alone is refused just the same.
      for (const method of ['GET', 'POST'] as const) {
        const res = await persisted(rig.url, { method, hash });
        expect(res.status).toBe(400);
        expect(res.errors?.map((e) => e.message).join('\n')).toMatch(refusal);
      }
    }
    expect(rig.emulator.calls).toEqual([]);
  });
});

describe('with AUTH_MODE=jwt', () => {
  let rig: TestRig;
  beforeAll(async () => {
    rig = await startRig({
      env: { AUTH_MODE: 'jwt', JWT_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE },
      emulator: { seed },
    });
  });
  afterAll(() => rig.close());

  it('authorises a persisted document by the caller of each request, not the one who sent it first', async () => {
    const query = uniqueQuery('users(ids: ["alice", "bob"]) { id tags }');
    const hash = sha256(query);
    const reader = bearer(await token({ sub: 'alice', scope: 'tags:read' }));
    expect((await persisted(rig.url, { method: 'POST', hash, query, headers: reader })).errors).toBeUndefined();
    rig.emulator.resetCalls();
    const own = bearer(await token({ sub: 'alice' }));
    const res = await persisted(rig.url, { method: 'GET', hash, headers: own });
    expect(res.status).toBe(403);
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(callsOf(rig.emulator)).toHaveLength(0);
    const anonymous = await persisted(rig.url, { method: 'GET', hash });
    expect(anonymous.status).toBe(401);
  });
});

describe('a fleet of two gateways on one Redis', () => {
  const sdkappid = uniqueSdkappid();
  const secretKey = randomUUID();
  let emulator: TimEmulator;
  let fleet: TestRig[] = [];

  beforeAll(async () => {
    emulator = await TimEmulator.start({ sdkappid, secretKey, adminIdentifier: ADMIN, port: 0, seed });
    const env = { TIM_SDKAPPID: String(sdkappid), REDIS_URL };
    fleet = await Promise.all([1, 2].map(() => startRig({ env, sharedEmulator: { emulator, secretKey } })));
  });
  afterAll(async () => {
    await Promise.all(fleet.map((g) => g.close()));
    await emulator?.close();
    await dropRedisKeys(REDIS_URL, `tim-tags:{${sdkappid}}:*`);
  });

  it('knows on one gateway a hash the other learned', async () => {
    const [a, b] = fleet as [TestRig, TestRig];
    const query = uniqueQuery();
    const hash = sha256(query);
    expect((await persisted(b.url, { method: 'GET', hash })).errors?.[0]?.extensions?.code).toBe(
      'PERSISTED_QUERY_NOT_FOUND',
    );
    expect((await persisted(a.url, { method: 'POST', hash, query })).errors).toBeUndefined();
    const res = await persisted(b.url, { method: 'GET', hash });
    expect(res.status).toBe(200);
    expect(res.data).toEqual({ user: { id: 'alice', tags: ['a', 'b'] } });
  });
});
