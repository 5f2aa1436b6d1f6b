/**
 * Issue 13: the gateway as a Federation v2 subgraph behind a real router (Hive Gateway), composed
 * with an accounts subgraph that owns `User`. The router asks for `_entities` of every user at
 * once; the gateway answers them through the request's loaders.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bearer, token, AUDIENCE, ISSUER, JWT_SECRET } from '../security/tokens.js';
import { callsOf, postGraphQL, startRig, type TestRig } from '../helpers/gateway.js';
import { accountId, accountName, startRouter, type Router } from './router.js';

const TEAM = 250;
const tagsOf = (i: number) => [`team`, `t${i % 7}`];
const seed = Array.from({ length: TEAM }, (_, i) => ({ To_Account: accountId(i), Tags: tagsOf(i) }));
const attributesOf = (i: number) => [
  { name: 'city', value: `c${i % 5}` },
  { name: 'plan', value: i % 2 ? 'pro' : 'free' },
];
const attributes = {
  AttrNames: { '0': 'city', '1': 'plan' },
  UserAttrs: Array.from({ length: TEAM }, (_, i) => ({
    To_Account: accountId(i),
    Attrs: Object.fromEntries(attributesOf(i).map((a) => [a.name, a.value])),
  })),
};

interface Member {
  id: string;
  name: string;
  tags: string[] | null;
  attributes: Array<{ name: string; value: string }> | null;
}

const TEAM_QUERY = `{ team(size: ${TEAM}) { id name tags attributes { name value } } }`;

describe('through Hive Gateway', () => {
  let rig: TestRig;
  let router: Router;

  beforeAll(async () => {
    rig = await startRig({ env: { FEDERATION: 'true' }, emulator: { seed, attributes } });
    router = await startRouter(rig.url);
  });
  afterAll(async () => {
    await router?.close();
    await rig?.close();
  });
  beforeEach(() => {
    rig.emulator.resetCalls();
    rig.emulator.clearFaults();
  });

  it('answers _service { sdl } with the subgraph SDL', async () => {
    const res = await rig.query<{ _service: { sdl: string } }>('{ _service { sdl } }');
    expect(res.data?._service.sdl).toMatch(/type User\s+@key\(fields: "id"\)/);
  });

  it("resolves every team member's tags and attributes in 3 im_get_tag and 3 im_get_attr calls", async () => {
    const res = await postGraphQL<{ team: Member[] }>(router.url, TEAM_QUERY);
    expect(res.errors).toBeUndefined();
    expect(res.data?.team).toEqual(
      Array.from({ length: TEAM }, (_, i) => ({
        id: accountId(i),
        name: accountName(accountId(i)),
        tags: tagsOf(i),
        attributes: attributesOf(i),
      })),
    );
    for (const command of ['im_get_tag', 'im_get_attr']) {
      const calls = callsOf(rig.emulator, command);
      expect(calls).toHaveLength(3);
      const asked = calls.flatMap((c) => (c.body as { To_Account: string[] }).To_Account);
      expect(asked.toSorted()).toEqual(seed.map((s) => s.To_Account).toSorted());
    }
  });

  it('nulls only the users of a failed batch', async () => {
    // The second im_get_tag call fails with a code that is not retried.
    rig.emulator.injectFault({ command: 'im_get_tag', errorCode: 90001, errorInfo: 'json parse error' }, { skip: 1 });
    const res = await postGraphQL<{ team: Member[] }>(router.url, TEAM_QUERY);
    const calls = callsOf(rig.emulator);
    expect(calls).toHaveLength(3);
    const failed = new Set((calls[1]!.body as { To_Account: string[] }).To_Account);
    expect(failed.size).toBe(100);
    const team = res.data!.team;
    expect(team).toHaveLength(TEAM);
    team.forEach((member, i) => {
      expect(member.name).toBe(accountName(accountId(i)));
      expect(member.tags).toEqual(failed.has(member.id) ? null : tagsOf(i));
      expect(member.attributes).toEqual(attributesOf(i));
    });
    expect(res.errors?.length).toBeGreaterThan(0);
    expect(res.errors!.every((e) => e.extensions?.code === 'UPSTREAM_ERROR')).toBe(true);
    expect(res.body).not.toMatch(/usersig|stack/i);
  });
});

describe('through Hive Gateway with AUTH_MODE=jwt', () => {
  let rig: TestRig;
  let router: Router;

  beforeAll(async () => {
    rig = await startRig({
      env: { FEDERATION: 'true', AUTH_MODE: 'jwt', JWT_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE },
      emulator: { seed },
    });
    router = await startRouter(rig.url);
  });
  afterAll(async () => {
    await router?.close();
    await rig?.close();
  });
  beforeEach(() => rig.emulator.resetCalls());

  it("reads the token's own user", async () => {
    const res = await postGraphQL<{ team: Member[] }>(
      router.url,
      '{ team(size: 1) { id name tags } }',
      undefined,
      bearer(await token({ sub: 'u0' })),
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.team).toEqual([{ id: 'u0', name: accountName('u0'), tags: tagsOf(0) }]);
    expect(callsOf(rig.emulator)).toHaveLength(1);
  });

  it("refuses others' tags without tags:read, whole and before any upstream call", async () => {
    const res = await postGraphQL<{ team: Member[] | null }>(
      router.url,
      '{ team(size: 3) { id name tags } }',
      undefined,
      bearer(await token({ sub: 'u0' })),
    );
    expect(res.data?.team?.map((m) => m.tags) ?? []).not.toContainEqual(expect.any(Array));
    expect(res.errors?.some((e) => e.extensions?.code === 'FORBIDDEN')).toBe(true);
    expect(callsOf(rig.emulator)).toHaveLength(0);
  });

  it("reads others' tags with tags:read", async () => {
    const res = await postGraphQL<{ team: Member[] }>(
      router.url,
      '{ team(size: 3) { id tags } }',
      undefined,
      bearer(await token({ sub: 'u0', scope: 'tags:read' })),
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.team.map((m) => m.tags)).toEqual([tagsOf(0), tagsOf(1), tagsOf(2)]);
  });

  it('authorises _entities by the users its representations name', async () => {
    const entities = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on User { id tags } } }';
    const own = bearer(await token({ sub: 'u0' }));
    const read = (r: unknown[]) => rig.query<{ _entities: Member[] }>(entities, { r }, own);
    const mine = await read([{ __typename: 'User', id: 'u0' }]);
    expect(mine.data?._entities).toEqual([{ id: 'u0', tags: tagsOf(0) }]);
    rig.emulator.resetCalls();
    for (const r of [
      [
        { __typename: 'User', id: 'u0' },
        { __typename: 'User', id: 'u1' },
      ],
      [{ __typename: 'Team', id: 'u0' }],
    ]) {
      const res = await read(r);
      expect(res.status).toBe(403);
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    expect(callsOf(rig.emulator)).toHaveLength(0);
  });

  it('refuses a router request without the caller token', async () => {
    const res = await postGraphQL<{ team: Member[] | null }>(router.url, '{ team(size: 1) { id tags } }');
    expect(res.errors?.some((e) => e.extensions?.code === 'UNAUTHENTICATED')).toBe(true);
    expect(callsOf(rig.emulator)).toHaveLength(0);
  });
});
