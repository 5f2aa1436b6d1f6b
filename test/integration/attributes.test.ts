/**
 * Issue 11: push attributes over HTTP against the emulator: batching like tags,
 * both commands side by side, renames that keep other slots, refusals before
 * any write call, partial failure, writes that merge, the cache.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { callsOf, startRig, type TestRig } from '../helpers/gateway.js';

let rig: TestRig;

beforeAll(async () => {
  rig = await startRig();
});
afterAll(() => rig.close());
beforeEach(() => rig.emulator.resetCalls());
afterEach(() => {
  rig.emulator.clearFaults();
  rig.emulator.latencyMs = 0;
});

const users = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `user${String(from + i).padStart(3, '0')}`);
type Attr = { name: string; value: string };
type UsersData = { users: Array<{ id: string; tags?: string[] | null; attributes: Attr[] | null }> };
const sortedAttrs = (attrs: Record<string, string>) =>
  Object.entries(attrs)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, value]) => ({ name, value }));

describe('reading attributes', () => {
  it('reads 250 users in exactly three im_get_attr calls of 100, 100 and 50', async () => {
    const ids = users(250);
    const res = await rig.query<UsersData>(
      'query($ids: [ID!]!) { users(ids: $ids) { id attributes { name value } } }',
      {
        ids,
      },
    );
    expect(res.errors).toBeUndefined();
    res.data!.users.forEach((u, i) => {
      expect(u.id).toBe(ids[i]);
      expect(u.attributes).toEqual(sortedAttrs(rig.emulator.attributes.get(ids[i]!)));
    });
    expect(res.data!.users.filter((u) => u.attributes!.length > 0).length).toBeGreaterThan(200);
    const calls = callsOf(rig.emulator, 'im_get_attr');
    expect(calls.map((c) => c.accounts.length).sort((a, b) => b - a)).toEqual([100, 100, 50]);
    expect(new Set(calls.flatMap((c) => c.accounts)).size).toBe(250);
  });

  it('sends the tag and attribute calls of 150 users side by side, two of each', async () => {
    rig.emulator.latencyMs = 200;
    const ids = users(150);
    const started = Date.now();
    const res = await rig.query<UsersData>('query($ids: [ID!]!) { users(ids: $ids) { id tags attributes { name } } }', {
      ids,
    });
    const took = Date.now() - started;
    expect(res.errors).toBeUndefined();
    const tagCalls = callsOf(rig.emulator, 'im_get_tag');
    const attrCalls = callsOf(rig.emulator, 'im_get_attr');
    expect(tagCalls.map((c) => c.accounts.length).sort()).toEqual([100, 50].sort());
    expect(attrCalls.map((c) => c.accounts.length).sort()).toEqual([100, 50].sort());
    // Every call arrived before the first answer could have come back: the commands overlap in time.
    const arrivals = [...tagCalls, ...attrCalls].map((c) => c.at);
    expect(Math.max(...arrivals) - Math.min(...arrivals)).toBeLessThan(200);
    // One round trip, not two.
    expect(took).toBeLessThan(2 * 200);
  });

  it('answers attribute(name:) and attributes of one user with one lookup', async () => {
    const res = await rig.query<{ user: { city: string | null; nope: string | null; attributes: Attr[] } }>(
      '{ user(id: "alice") { city: attribute(name: "city") nope: attribute(name: "nope") attributes { name value } } }',
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.user).toEqual({
      city: 'singapore',
      nope: null,
      attributes: [
        { name: 'city', value: 'singapore' },
        { name: 'lang', value: 'en' },
        { name: 'plan', value: 'pro' },
      ],
    });
    const calls = callsOf(rig.emulator, 'im_get_attr');
    expect(calls.map((c) => c.accounts)).toEqual([['alice']]);
  });

  it('gives [] to a user with no attributes', async () => {
    const res = await rig.query<{ user: { attributes: Attr[] } }>('{ user(id: "frank") { attributes { name } } }');
    expect(res.data!.user.attributes).toEqual([]);
  });

  it('fails only the users of the im_get_attr batch that failed', async () => {
    rig.emulator.injectFault({ errorCode: 90009, command: 'im_get_attr' }, { skip: 1, count: 1 });
    const ids = users(250);
    const res = await rig.query<UsersData>('query($ids: [ID!]!) { users(ids: $ids) { id attributes { name } } }', {
      ids,
    });
    const failedCall = callsOf(rig.emulator, 'im_get_attr').find((c) => c.errorCode !== 0)!;
    const failed = new Set(failedCall.accounts);
    expect(failed.size).toBeGreaterThan(0);
    const failedPaths = new Set(res.errors!.map((e) => e.path![1]));
    for (const e of res.errors!) expect(e.extensions?.code).toBe('UPSTREAM_ERROR');
    res.data!.users.forEach((u, i) => {
      if (failed.has(u.id)) {
        expect(u.attributes).toBeNull();
        expect(failedPaths.has(i)).toBe(true);
      } else {
        expect(u.attributes).not.toBeNull();
      }
    });
    expect(res.errors).toHaveLength(failed.size);
  });

  it('lists the app attribute names in slot order', async () => {
    const res = await rig.query<{ attributeNames: Array<{ slot: number; name: string }> }>(
      '{ attributeNames { slot name } }',
    );
    expect(res.data!.attributeNames.slice(0, 3)).toEqual([
      { slot: 0, name: 'city' },
      { slot: 1, name: 'plan' },
      { slot: 2, name: 'lang' },
    ]);
  });
});

describe('writing attributes', () => {
  type SetData = { setUserAttributes: Array<{ id: string; attributes: Attr[] | null }> };
  const SET =
    'mutation($input: [UserAttributesInput!]!) { setUserAttributes(input: $input) { id attributes { name value } } }';

  it('merges: the attributes given change, the others stay; the answer is read after the write', async () => {
    const res = await rig.query<SetData>(SET, {
      input: [{ id: 'bob', attributes: [{ name: 'plan', value: 'team' }] }],
    });
    expect(res.errors).toBeUndefined();
    expect(res.data!.setUserAttributes).toEqual([
      {
        id: 'bob',
        attributes: [
          { name: 'city', value: 'shenzhen' },
          { name: 'lang', value: 'zh' },
          { name: 'plan', value: 'team' },
        ],
      },
    ]);
    expect(callsOf(rig.emulator, 'im_set_attr').map((c) => c.body)).toEqual([
      { UserAttrs: [{ To_Account: 'bob', Attrs: { plan: 'team' } }] },
    ]);
  });

  it('splits 150 users into calls of at most 100 accounts', async () => {
    const input = users(150, 101).map((id) => ({ id, attributes: [{ name: 'lang', value: 'fr' }] }));
    const res = await rig.query<SetData>(SET, { input });
    expect(res.errors).toBeUndefined();
    expect(callsOf(rig.emulator, 'im_set_attr').map((c) => c.accounts.length)).toEqual([100, 50]);
    for (const u of res.data!.setUserAttributes) expect(u.attributes).toContainEqual({ name: 'lang', value: 'fr' });
  });

  it('refuses an attribute the app has not named, naming it, with no write call', async () => {
    const res = await rig.query<SetData>(SET, {
      input: [
        {
          id: 'carol',
          attributes: [
            { name: 'lang', value: 'en' },
            { name: 'shoe-size', value: '42' },
          ],
        },
      ],
    });
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', attribute: 'shoe-size' });
    expect(res.errors![0]!.message).toMatch(/shoe-size/);
    expect(callsOf(rig.emulator, 'im_set_attr')).toEqual([]);
  });

  it('refuses a value of 51 bytes with no upstream call at all', async () => {
    const res = await rig.query<SetData>(SET, {
      input: [{ id: 'carol', attributes: [{ name: 'lang', value: 'x'.repeat(51) }] }],
    });
    expect(res.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    expect(res.errors![0]!.message).toMatch(/51 bytes/);
    expect(rig.emulator.calls).toEqual([]);
  });

  it('removes attributes by name', async () => {
    const res = await rig.query<{ removeUserAttributes: Array<{ attributes: Attr[] }> }>(
      'mutation { removeUserAttributes(input: [{ id: "dave", names: ["plan"] }]) { attributes { name value } } }',
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.removeUserAttributes[0]!.attributes).toEqual([{ name: 'lang', value: 'zh' }]);
    expect(callsOf(rig.emulator, 'im_remove_attr').map((c) => c.body)).toEqual([
      { UserAttrs: [{ To_Account: 'dave', Attrs: ['plan'] }] },
    ]);
  });

  it('reports a failed write per user with failedIds, and nothing written that was not', async () => {
    rig.emulator.injectFault({ errorCode: 90009, command: 'im_set_attr' }, { count: 1 });
    const res = await rig.query<SetData>(SET, { input: [{ id: 'erin', attributes: [{ name: 'plan', value: 'x' }] }] });
    expect(res.data!.setUserAttributes[0]!.attributes).toBeNull();
    expect(res.errors![0]!.extensions).toMatchObject({
      code: 'UPSTREAM_ERROR',
      timErrorCode: 90009,
      failedIds: ['erin'],
    });
  });
});

describe('naming attribute slots', () => {
  type Names = Array<{ slot: number; name: string }>;
  const RENAME = 'mutation($names: [AttributeNameInput!]!) { setAttributeNames(names: $names) { slot name } }';

  it('keeps the slots not named, and writes the whole map', async () => {
    const res = await rig.query<{ setAttributeNames: Names }>(RENAME, { names: [{ slot: 7, name: 'tier' }] });
    expect(res.errors).toBeUndefined();
    expect(res.data!.setAttributeNames).toEqual(
      expect.arrayContaining([
        { slot: 0, name: 'city' },
        { slot: 1, name: 'plan' },
        { slot: 2, name: 'lang' },
        { slot: 7, name: 'tier' },
      ]),
    );
    const [write] = callsOf(rig.emulator, 'im_set_attr_name');
    expect(write!.body).toMatchObject({ AttrNames: { '0': 'city', '1': 'plan', '2': 'lang', '7': 'tier' } });
    // The new name is usable at once.
    const set = await rig.query(
      'mutation { setUserAttributes(input: [{ id: "alice", attributes: [{ name: "tier", value: "gold" }] }]) { id } }',
    );
    expect(set.errors).toBeUndefined();
    expect(rig.emulator.attributes.get('alice').tier).toBe('gold');
  });

  it('two concurrent renames keep each other’s slots', async () => {
    rig.emulator.latencyMs = 50;
    const [a, b] = await Promise.all([
      rig.query(RENAME, { names: [{ slot: 8, name: 'os' }] }),
      rig.query(RENAME, { names: [{ slot: 9, name: 'team' }] }),
    ]);
    expect(a.errors).toBeUndefined();
    expect(b.errors).toBeUndefined();
    expect(rig.emulator.attributes.attrNames()).toMatchObject({ '8': 'os', '9': 'team', '0': 'city' });
  });

  it('refuses a slot out of range or a name given twice, with no call', async () => {
    for (const names of [
      [{ slot: 10, name: 'x' }],
      [
        { slot: 3, name: 'city' },
        { slot: 4, name: 'city' },
      ],
      [],
    ]) {
      const res = await rig.query(RENAME, { names });
      expect(res.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    }
    expect(rig.emulator.calls).toEqual([]);
  });

  it('refuses a name another slot holds already, before the write', async () => {
    const res = await rig.query(RENAME, { names: [{ slot: 5, name: 'city' }] });
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', name: 'city' });
    expect(callsOf(rig.emulator, 'im_set_attr_name')).toEqual([]);
  });

  it('reads the names again after TIM answers 90033', async () => {
    // Known to this gateway, then dropped behind its back.
    await rig.query('{ attributeNames { name } }');
    const names = new Map(Object.entries(rig.emulator.attributes.attrNames()).map(([s, n]) => [Number(s), n]));
    names.delete(7);
    rig.emulator.attributes.setNames(names);
    const SET_TIER =
      'mutation { setUserAttributes(input: [{ id: "bob", attributes: [{ name: "tier", value: "x" }] }]) { id attributes { name } } }';
    const first = await rig.query(SET_TIER);
    expect(first.errors![0]!.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', timErrorCode: 90033 });
    rig.emulator.resetCalls();
    const second = await rig.query(SET_TIER);
    expect(second.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', attribute: 'tier' });
    expect(callsOf(rig.emulator, 'im_set_attr')).toEqual([]);
  });
});

describe('with TAGS_CACHE_TTL_MS', () => {
  let cached: TestRig;
  beforeAll(async () => {
    cached = await startRig({ env: { TAGS_CACHE_TTL_MS: '60000' } });
  });
  afterAll(() => cached.close());

  it('serves attributes from the cache, and a write drops them at once', async () => {
    const read = () =>
      cached.query<{ user: { plan: string | null } }>('{ user(id: "carol") { plan: attribute(name: "plan") } }');
    await read();
    await read();
    expect(callsOf(cached.emulator, 'im_get_attr')).toHaveLength(1);
    await cached.query(
      'mutation { setUserAttributes(input: [{ id: "carol", attributes: [{ name: "plan", value: "team" }] }]) { id } }',
    );
    cached.emulator.resetCalls();
    expect((await read()).data!.user.plan).toBe('team');
    expect(callsOf(cached.emulator, 'im_get_attr')).toHaveLength(1);
  });
});
