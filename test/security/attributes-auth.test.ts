/** Issue 11: who may read and write attributes in jwt mode, decided once per operation before any upstream call. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRig, type GraphQLResponse, type TestRig } from '../helpers/gateway.js';
import { AUDIENCE, bearer, ISSUER, JWT_SECRET, token } from './tokens.js';

let rig: TestRig;

beforeAll(async () => {
  rig = await startRig({ env: { AUTH_MODE: 'jwt', JWT_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE } });
});
afterAll(() => rig.close());
beforeEach(() => rig.emulator.resetCalls());

const asAlice = async (query: string, scope?: string) =>
  rig.query(query, {}, bearer(await token({ sub: 'alice', scope })));

function expectForbidden(res: GraphQLResponse, scope: string) {
  expect(res.status).toBe(403);
  expect(res.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN', requiredScope: scope });
  expect(rig.emulator.calls).toEqual([]);
}

const OWN = '{ user(id: "alice") { attributes { name value } city: attribute(name: "city") } }';
const OTHER = '{ user(id: "bob") { attribute(name: "city") } }';
const SET =
  'mutation { setUserAttributes(input: [{ id: "alice", attributes: [{ name: "plan", value: "team" }] }]) { id } }';
const REMOVE = 'mutation { removeUserAttributes(input: [{ id: "alice", names: ["plan"] }]) { id } }';
const RENAME = 'mutation { setAttributeNames(names: [{ slot: 6, name: "device" }]) { slot name } }';

describe('reading attributes', () => {
  it("reads the token's own user with no scope", async () => {
    const res = await asAlice(OWN);
    expect(res.errors).toBeUndefined();
    expect(res.data).toMatchObject({ user: { city: 'singapore' } });
  });

  it("refuses another user's attributes without tags:read, with no call", async () => {
    expectForbidden(await asAlice(OTHER), 'tags:read');
  });

  it("reads another user's attributes with tags:read", async () => {
    const res = await asAlice(OTHER, 'tags:read');
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ user: { attribute: 'shenzhen' } });
  });

  it('answers attributeNames to any valid token', async () => {
    const res = await asAlice('{ attributeNames { slot name } }');
    expect(res.errors).toBeUndefined();
    expect(res.data).toMatchObject({ attributeNames: expect.arrayContaining([{ slot: 0, name: 'city' }]) });
  });

  it('refuses attributeNames without a token, with no call', async () => {
    const res = await rig.query('{ attributeNames { slot name } }');
    expect(res.status).toBe(401);
    expect(rig.emulator.calls).toEqual([]);
  });
});

describe('writing attributes', () => {
  it.each([
    ['setUserAttributes', SET],
    ['removeUserAttributes', REMOVE],
    ['setAttributeNames', RENAME],
  ])('refuses %s without tags:write, even on the own user, with no call', async (_name, mutation) => {
    expectForbidden(await asAlice(mutation, 'tags:read'), 'tags:write');
  });

  it.each([
    ['setUserAttributes', SET],
    ['removeUserAttributes', REMOVE],
    ['setAttributeNames', RENAME],
  ])('runs %s with tags:write', async (_name, mutation) => {
    const res = await asAlice(mutation, 'tags:write');
    expect(res.errors).toBeUndefined();
    expect(rig.emulator.calls.length).toBeGreaterThan(0);
  });
});
