/** Issue 6: AUTH_MODE=jwt with JWT_SECRET: who may read and write whose tags, decided before any upstream call. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { startRig, type GraphQLResponse, type TestRig } from '../helpers/gateway.js';
import { AUDIENCE, bearer, ISSUER, JWT_SECRET, token, unsecuredToken } from './tokens.js';

let rig: TestRig;

beforeAll(async () => {
  // Introspection is off by default with real credentials; on here, so that its authorisation is tested.
  rig = await startRig({
    env: { AUTH_MODE: 'jwt', JWT_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, GRAPHQL_INTROSPECTION: 'true' },
  });
});
afterAll(() => rig.close());
beforeEach(() => rig.emulator.resetCalls());

const OWN = '{ user(id: "alice") { id tags } }';
const OTHER = '{ user(id: "bob") { id tags } }';
const ADD = 'mutation { addUserTags(input: [{ id: "alice", tags: ["auth-test"] }]) { id tags } }';

function expectRefused(res: GraphQLResponse, code: 'UNAUTHENTICATED' | 'FORBIDDEN', status: number) {
  expect(res.status).toBe(status);
  expect(res.data ?? null).toBeNull();
  expect(res.errors).toHaveLength(1);
  expect(res.errors![0]!.extensions?.code).toBe(code);
  expect(rig.emulator.calls).toEqual([]);
}

describe('authentication', () => {
  it('refuses a token it has taken on trust once the token expires', async () => {
    // Expired 3 s ago: within the 5 s clock tolerance, so accepted, and remembered; refused once past it.
    const jwt = await token({ expiresIn: -3 });
    const first = await rig.query(OWN, undefined, bearer(jwt));
    expect(first.status).toBe(200);
    expect(first.errors).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 2500));
    rig.emulator.resetCalls();
    const again = await rig.query(OWN, undefined, bearer(jwt));
    expectRefused(again, 'UNAUTHENTICATED', 401);
    expect(again.errors![0]!.message).toMatch(/expired/);
  });

  it('takes a remembered token for its own caller only: another token is checked on its own', async () => {
    const [reader, plain] = await Promise.all([token({ sub: 'ops', scope: 'tags:read' }), token({ sub: 'ops' })]);
    expect((await rig.query(OTHER, undefined, bearer(reader))).status).toBe(200);
    rig.emulator.resetCalls();
    expectRefused(await rig.query(OTHER, undefined, bearer(plain)), 'FORBIDDEN', 403);
    // A token that differs in its signature alone is not the remembered one.
    const forged = `${reader.slice(0, -2)}${reader.endsWith('AA') ? 'BB' : 'AA'}`;
    expectRefused(await rig.query(OTHER, undefined, bearer(forged)), 'UNAUTHENTICATED', 401);
  });

  it('refuses a request with no token, saying how to send one', async () => {
    const res = await rig.query(OWN);
    expectRefused(res, 'UNAUTHENTICATED', 401);
    expect(res.errors![0]!.message).toMatch(/Authorization: Bearer/);
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  it.each([
    ['an expired token', () => token({ expiresIn: -120 }), /expired/],
    [
      'a token signed with another secret',
      () => token({ key: new TextEncoder().encode('another-secret-of-at-least-32-chars!!') }),
      /signature/,
    ],
    ['a token for another audience', () => token({ audience: 'some-other-api' }), /aud/],
    ['a token from another issuer', () => token({ issuer: 'https://evil.test' }), /iss/],
    ['a token not valid yet', () => token({ notBefore: 600 }), /not valid yet/],
    ['a token without exp', () => token({ expiresIn: null }), /exp/],
    ['a token without sub', () => token({ sub: null }), /sub/],
    [
      'a token with alg none',
      async () => unsecuredToken({ sub: 'alice', scope: 'tags:read tags:write', iss: ISSUER, aud: AUDIENCE, exp: 9e9 }),
      /algorithm/,
    ],
    [
      'a token with a forged payload',
      async () => {
        const [h, , s] = (await token()).split('.');
        const payload = Buffer.from(
          JSON.stringify({ sub: 'alice', scope: 'tags:write', iss: ISSUER, aud: AUDIENCE, exp: 9e9 }),
        ).toString('base64url');
        return `${h}.${payload}.${s}`;
      },
      /signature/,
    ],
    ['garbage', async () => 'not-a-jwt', /Bearer <JWT>/],
  ])('refuses %s with UNAUTHENTICATED and no upstream call', async (_label, make, why) => {
    const res = await rig.query(OWN, undefined, bearer(await make()));
    expectRefused(res, 'UNAUTHENTICATED', 401);
    expect(res.errors![0]!.message).toMatch(why);
  });

  it('refuses a token sent other than as a bearer token', async () => {
    const jwt = await token();
    expectRefused(await rig.query(OWN, undefined, { authorization: jwt }), 'UNAUTHENTICATED', 401);
    expectRefused(await rig.query(OWN, undefined, { authorization: `Basic ${jwt}` }), 'UNAUTHENTICATED', 401);
  });

  it('refuses even an invalid document before saying what is wrong with it', async () => {
    const res = await rig.query('{ nosuchfield }');
    expectRefused(res, 'UNAUTHENTICATED', 401);
  });
});

describe('authorisation', () => {
  it("lets a token read its own user's tags with no scope", async () => {
    const res = await rig.query(OWN, undefined, bearer(await token()));
    expect(res.status).toBe(200);
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ user: { id: 'alice', tags: expect.any(Array) } });
    expect(rig.emulator.calls.map((c) => c.accounts)).toEqual([['alice']]);
  });

  it('counts own ids however they are written: aliases, lists, variables, fragments, numbers', async () => {
    const auth = bearer(await token({ sub: '42' }));
    const res = await rig.query(
      `query Own($me: ID!, $us: [ID!]!) {
         a: user(id: $me) { tags } b: users(ids: $us) { id } ...F ... on Query { d: user(id: 42) { id } } __typename
       }
       fragment F on Query { c: users(ids: ["42", 42]) { tags } }`,
      { me: '42', us: ['42', 42] },
      auth,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.b).toEqual([{ id: '42' }, { id: '42' }]);
    expect(new Set(rig.emulator.calls.flatMap((c) => c.accounts))).toEqual(new Set(['42']));
  });

  it.each([
    ['a literal id', OTHER, undefined],
    ['a variable', 'query($id: ID!) { user(id: $id) { tags } }', { id: 'bob' }],
    ['a list that also names the caller', '{ users(ids: ["alice", "bob"]) { tags } }', undefined],
    ['an alias next to an own lookup', '{ me: user(id: "alice") { tags } them: user(id: "bob") { tags } }', undefined],
    ['a fragment', '{ ...F } fragment F on Query { user(id: "bob") { tags } }', undefined],
    ['a skipped field', '{ user(id: "bob") @skip(if: true) { tags } me: user(id: "alice") { tags } }', undefined],
    ['a list variable', 'query($ids: [ID!]!) { users(ids: $ids) { id } }', { ids: ['alice', 'bob'] }],
  ])(
    "refuses another user's tags through %s without tags:read: FORBIDDEN, no upstream call",
    async (_label, query, variables) => {
      const res = await rig.query(query, variables, bearer(await token({ scope: 'tags:write other:scope' })));
      expectRefused(res, 'FORBIDDEN', 403);
      expect(res.errors![0]!.message).toMatch(/tags:read/);
      expect(res.errors![0]!.extensions?.requiredScope).toBe('tags:read');
    },
  );

  it.each([
    ['an array', { scope: ['tags:read', 'tags:write'] }],
    ['an array named scp', { scp: ['tags:read', 'tags:write'] }],
    ['a number', { scope: 42 }],
    ['an object', { scope: { read: true } }],
  ])('reads a scope claim that is %s as no scope: no crash, own user only', async (_label, claims) => {
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({ ...claims, sub: 'alice', iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 600 })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(JWT_SECRET));
    const own = await rig.query(OWN, undefined, bearer(jwt));
    expect(own.status).toBe(200);
    expect(own.errors).toBeUndefined();
    rig.emulator.resetCalls();
    expectRefused(await rig.query(OTHER, undefined, bearer(jwt)), 'FORBIDDEN', 403);
    expectRefused(await rig.query(ADD, undefined, bearer(jwt)), 'FORBIDDEN', 403);
  });

  it("with tags:read reads any user's tags", async () => {
    const res = await rig.query(
      '{ users(ids: ["alice", "bob", "carol"]) { id tags } }',
      undefined,
      bearer(await token({ scope: 'tags:read' })),
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.users).toHaveLength(3);
    expect(rig.emulator.calls).toHaveLength(1);
  });

  it('lets a variable that does not coerce fail as GraphQL says, without a call', async () => {
    const res = await rig.query(
      'query($id: ID!) { user(id: $id) { tags } }',
      { id: { not: 'an id' } },
      bearer(await token()),
    );
    expect(res.errors![0]!.message).toMatch(/\$id/);
    expect(res.data ?? null).toBeNull();
    expect(rig.emulator.calls).toEqual([]);
  });

  it.each([
    ['addUserTags', ADD],
    ['removeUserTags', 'mutation { removeUserTags(input: [{ id: "alice", tags: ["auth-test"] }]) { id } }'],
    ['removeAllUserTags', 'mutation { removeAllUserTags(ids: ["alice"]) { id } }'],
  ])('refuses %s without tags:write, even on the caller itself and with tags:read', async (_label, mutation) => {
    const res = await rig.query(mutation, undefined, bearer(await token({ scope: 'tags:read' })));
    expectRefused(res, 'FORBIDDEN', 403);
    expect(res.errors![0]!.extensions?.requiredScope).toBe('tags:write');
    expect(rig.emulator.store.getTags('alice')).not.toContain('auth-test');
  });

  it('runs a mutation with tags:write', async () => {
    // Its own user: reading another user's tags in a mutation's answer needs tags:read too (issue 15).
    const auth = bearer(await token({ sub: 'alice', scope: 'tags:write' }));
    const added = await rig.query<{ addUserTags: Array<{ id: string; tags: string[] }> }>(ADD, undefined, auth);
    expect(added.errors).toBeUndefined();
    expect(added.data!.addUserTags[0]!.tags).toContain('auth-test');
    expect(rig.emulator.calls.map((c) => c.command)).toContain('im_add_tag');
    const removed = await rig.query(
      'mutation { removeUserTags(input: [{ id: "alice", tags: ["auth-test"] }]) { id tags } }',
      undefined,
      auth,
    );
    expect(removed.errors).toBeUndefined();
  });

  it('answers introspection and __typename to any good token', async () => {
    const res = await rig.query<{ __schema: { queryType: { name: string } } }>(
      '{ __schema { queryType { name } } __typename }',
      undefined,
      bearer(await token()),
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.__schema.queryType.name).toBe('Query');
  });
});
