/** Issue 7: a real frontend client (`@urql/core` with its fetch exchange) against the gateway, as the README shows it. */
import { Client, fetchExchange, gql } from '@urql/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { callsOf, startRig, type TestRig } from '../helpers/gateway.js';

interface User {
  id: string;
  tags: string[] | null;
}

const USERS = gql`
  query Users($ids: [ID!]!) {
    users(ids: $ids) {
      id
      tags
    }
  }
`;

const ADD_TAGS = gql`
  mutation AddTags($input: [UserTagsInput!]!) {
    addUserTags(input: $input) {
      id
      tags
    }
  }
`;

let rig: TestRig;
let client: Client;

beforeAll(async () => {
  rig = await startRig();
  // The README's client: POST for every operation (works with CSRF prevention and auth headers alike).
  client = new Client({
    url: `${rig.url}/graphql`,
    exchanges: [fetchExchange],
    preferGetMethod: false,
    requestPolicy: 'network-only',
    fetchOptions: () => ({ headers: { 'x-request-id': 'urql-test' } }),
  });
});
afterAll(() => rig.close());
beforeEach(() => {
  rig.emulator.resetCalls();
  rig.emulator.clearFaults();
});

describe('@urql/core against the gateway', () => {
  it('runs a query with variables and gets the tags the upstream holds', async () => {
    const result = await client.query<{ users: User[] }>(USERS, { ids: ['alice', 'bob', 'alice'] }).toPromise();
    expect(result.error).toBeUndefined();
    expect(result.data!.users).toEqual([
      { id: 'alice', tags: rig.emulator.store.getTags('alice') },
      { id: 'bob', tags: rig.emulator.store.getTags('bob') },
      { id: 'alice', tags: rig.emulator.store.getTags('alice') },
    ]);
    expect(result.data!.users[0]!.tags).toContain('vip');
    expect(callsOf(rig.emulator)).toHaveLength(1);
  });

  it('runs a mutation and gets the tags as read after the write', async () => {
    const result = await client
      .mutation<{ addUserTags: User[] }>(ADD_TAGS, { input: [{ id: 'dave', tags: ['urql', 'frontend'] }] })
      .toPromise();
    expect(result.error).toBeUndefined();
    const [dave] = result.data!.addUserTags;
    expect(dave!.id).toBe('dave');
    expect(dave!.tags).toEqual(expect.arrayContaining(['lang:zh', 'plan:free', 'urql', 'frontend']));
    expect(rig.emulator.store.getTags('dave')).toEqual(expect.arrayContaining(['urql', 'frontend']));
    expect(callsOf(rig.emulator, 'im_add_tag')).toHaveLength(1);
  });

  it('surfaces a bad input as a GraphQL error with extensions.code, and makes no upstream call', async () => {
    const result = await client.query(USERS, { ids: ['alice', ''] }).toPromise();
    expect(result.error?.networkError).toBeUndefined();
    expect(result.error?.graphQLErrors[0]?.extensions.code).toBe('BAD_USER_INPUT');
    expect(callsOf(rig.emulator)).toHaveLength(0);
  });

  it('gives both the partial data and the upstream error, with its TIM code', async () => {
    rig.emulator.injectFault({ errorCode: 90001, command: 'im_get_tag' }, { count: 1 });
    const result = await client.query<{ users: User[] }>(USERS, { ids: ['carol'] }).toPromise();
    const [error] = result.error!.graphQLErrors;
    expect(error!.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', timErrorCode: 90001 });
    expect(error!.path).toEqual(['users', 0, 'tags']);
    expect(result.data!.users).toEqual([{ id: 'carol', tags: null }]);
  });
});
