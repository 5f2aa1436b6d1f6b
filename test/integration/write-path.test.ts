/** Issue 3: the write path end to end, over HTTP, against the emulator. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { callsOf, startRig, type GraphQLResponse, type TestRig } from '../helpers/gateway.js';

interface UserOut {
  id: string;
  tags: string[] | null;
}
type Input = Array<{ id: string; tags: string[] }>;

const ADD = 'mutation($input: [UserTagsInput!]!) { addUserTags(input: $input) { id tags } }';
const REMOVE = 'mutation($input: [UserTagsInput!]!) { removeUserTags(input: $input) { id tags } }';
const REMOVE_ALL = 'mutation($ids: [ID!]!) { removeAllUserTags(ids: $ids) { id tags } }';
const READ = 'query($ids: [ID!]!) { users(ids: $ids) { id tags } }';

let rig: TestRig;

beforeAll(async () => {
  rig = await startRig({ emulator: { seed: 'empty' } });
});
afterAll(() => rig.close());
beforeEach(() => {
  rig.emulator.resetCalls();
  rig.emulator.clearFaults();
});

const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const tagList = (n: number, prefix = 't') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const stored = (account: string) => rig.emulator.store.getTags(account);
const sorted = (list: readonly string[]) => [...list].sort();

async function add(input: Input, on: TestRig = rig) {
  return on.query<{ addUserTags: UserOut[] }>(ADD, { input });
}
async function remove(input: Input, on: TestRig = rig) {
  return on.query<{ removeUserTags: UserOut[] }>(REMOVE, { input });
}
async function removeAll(accounts: string[], on: TestRig = rig) {
  return on.query<{ removeAllUserTags: UserOut[] }>(REMOVE_ALL, { ids: accounts });
}
async function read(accounts: string[], on: TestRig = rig): Promise<UserOut[]> {
  const res = await on.query<{ users: UserOut[] }>(READ, { ids: accounts });
  expect(res.errors).toBeUndefined();
  return res.data!.users;
}

/** Upstream calls other than reads: what the write path sent. */
const writeCalls = () => rig.emulator.calls.filter((c) => c.command !== 'im_get_tag');

describe('each mutation, then a read', () => {
  it('adds tags, answers with them, and a later read sees them', async () => {
    const res = await add([{ id: 'add-1', tags: ['vip', 'beta'] }]);
    expect(res.errors).toBeUndefined();
    expect(res.data!.addUserTags).toEqual([{ id: 'add-1', tags: ['vip', 'beta'] }]);
    expect(stored('add-1')).toEqual(['vip', 'beta']);
    const calls = callsOf(rig.emulator, 'im_add_tag');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.body).toEqual({ UserTags: [{ To_Account: 'add-1', Tags: ['vip', 'beta'] }] });
    expect(await read(['add-1'])).toEqual([{ id: 'add-1', tags: ['vip', 'beta'] }]);
  });

  it('adding a tag held already changes nothing and is no error', async () => {
    rig.emulator.store.setTags('add-2', ['vip']);
    const res = await add([{ id: 'add-2', tags: ['vip', 'new'] }]);
    expect(res.errors).toBeUndefined();
    expect(res.data!.addUserTags).toEqual([{ id: 'add-2', tags: ['vip', 'new'] }]);
    expect(stored('add-2')).toEqual(['vip', 'new']);
  });

  it('removes tags, answers with what is left, and a later read agrees', async () => {
    rig.emulator.store.setTags('rm-1', ['x', 'y', 'z']);
    const res = await remove([{ id: 'rm-1', tags: ['y', 'not-held'] }]);
    expect(res.errors).toBeUndefined();
    expect(res.data!.removeUserTags).toEqual([{ id: 'rm-1', tags: ['x', 'z'] }]);
    expect(stored('rm-1')).toEqual(['x', 'z']);
    expect(callsOf(rig.emulator, 'im_remove_tag')).toHaveLength(1);
    expect(await read(['rm-1'])).toEqual([{ id: 'rm-1', tags: ['x', 'z'] }]);
  });

  it('removes every tag of several users in one call and answers tags: []', async () => {
    rig.emulator.store.setTags('ra-1', ['x', 'y']);
    rig.emulator.store.setTags('ra-2', ['z']);
    const res = await removeAll(['ra-1', 'ra-2', 'ra-never-had-tags']);
    expect(res.errors).toBeUndefined();
    expect(res.data!.removeAllUserTags).toEqual([
      { id: 'ra-1', tags: [] },
      { id: 'ra-2', tags: [] },
      { id: 'ra-never-had-tags', tags: [] },
    ]);
    expect(stored('ra-1')).toEqual([]);
    expect(stored('ra-2')).toEqual([]);
    const calls = callsOf(rig.emulator, 'im_remove_all_tags');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.body).toEqual({ To_Account: ['ra-1', 'ra-2', 'ra-never-had-tags'] });
    expect(await read(['ra-1', 'ra-2'])).toEqual([
      { id: 'ra-1', tags: [] },
      { id: 'ra-2', tags: [] },
    ]);
  });

  it('returns the users in input order, each once, even when named twice', async () => {
    const res = await add([
      { id: 'ord-b', tags: ['1'] },
      { id: 'ord-a', tags: ['2'] },
      { id: 'ord-b', tags: ['3'] },
      { id: 'ord-c', tags: ['4'] },
    ]);
    expect(res.errors).toBeUndefined();
    expect(res.data!.addUserTags).toEqual([
      { id: 'ord-b', tags: ['1', '3'] },
      { id: 'ord-a', tags: ['2'] },
      { id: 'ord-c', tags: ['4'] },
    ]);
    const calls = callsOf(rig.emulator, 'im_add_tag');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.accounts).toEqual(['ord-b', 'ord-a', 'ord-c']);

    const all = await removeAll(['ord-c', 'ord-a', 'ord-c']);
    expect(all.data!.removeAllUserTags.map((u) => u.id)).toEqual(['ord-c', 'ord-a']);
    expect(callsOf(rig.emulator, 'im_remove_all_tags')[0]!.accounts).toEqual(['ord-c', 'ord-a']);
  });
});

describe('splitting writes to fit the upstream', () => {
  it('sends 150 users in two im_add_tag calls of at most 100 accounts, each user once', async () => {
    const accounts = ids(150, 'many-');
    const res = await add(accounts.map((id) => ({ id, tags: ['bulk'] })));
    expect(res.errors).toBeUndefined();
    expect(res.data!.addUserTags).toEqual(accounts.map((id) => ({ id, tags: ['bulk'] })));
    const calls = callsOf(rig.emulator, 'im_add_tag');
    expect(calls.map((c) => c.accounts.length)).toEqual([100, 50]);
    expect(calls.every((c) => c.errorCode === 0)).toBe(true);
    expect(sorted(calls.flatMap((c) => c.accounts))).toEqual(sorted(accounts));
    for (const a of accounts) expect(stored(a)).toEqual(['bulk']);
    // The answer is read afresh: 150 users are two im_get_tag calls as well.
    expect(callsOf(rig.emulator, 'im_get_tag').map((c) => c.accounts.length)).toEqual([100, 50]);
  });

  it('splits removeAllUserTags and removeUserTags of 150 users the same way', async () => {
    const accounts = ids(150, 'many-');
    const removed = await remove(accounts.slice(0, 120).map((id) => ({ id, tags: ['bulk'] })));
    expect(removed.errors).toBeUndefined();
    expect(callsOf(rig.emulator, 'im_remove_tag').map((c) => c.accounts.length)).toEqual([100, 20]);
    const cleared = await removeAll(accounts);
    expect(cleared.errors).toBeUndefined();
    expect(callsOf(rig.emulator, 'im_remove_all_tags').map((c) => c.accounts.length)).toEqual([100, 50]);
    for (const a of accounts) expect(stored(a)).toEqual([]);
  });

  it('gives one user 25 tags in calls of at most 10 tags each, and stores all 25', async () => {
    const tags = tagList(25, 'many-tag-');
    const res = await add([{ id: 'tags-25', tags }]);
    expect(res.errors).toBeUndefined();
    expect(sorted(res.data!.addUserTags[0]!.tags!)).toEqual(sorted(tags));
    const calls = callsOf(rig.emulator, 'im_add_tag');
    expect(calls).toHaveLength(3);
    const sent = calls.map((c) => (c.body as { UserTags: Array<{ Tags: string[] }> }).UserTags[0]!.Tags);
    expect(sent.map((t) => t.length)).toEqual([10, 10, 5]);
    expect(sorted(sent.flat())).toEqual(sorted(tags));
    expect(sorted(stored('tags-25'))).toEqual(sorted(tags));

    const res2 = await remove([{ id: 'tags-25', tags: tags.slice(0, 21) }]);
    expect(res2.errors).toBeUndefined();
    expect(
      callsOf(rig.emulator, 'im_remove_tag').map(
        (c) => (c.body as { UserTags: Array<{ Tags: string[] }> }).UserTags[0]!.Tags.length,
      ),
    ).toEqual([10, 10, 1]);
    expect(res2.data!.removeUserTags[0]!.tags).toEqual(tags.slice(21));
    expect(stored('tags-25')).toEqual(tags.slice(21));
  });

  it('sends duplicate tags once', async () => {
    const res = await add([{ id: 'dup-1', tags: ['a', 'b', 'a', 'a', 'b', 'c'] }]);
    expect(res.errors).toBeUndefined();
    expect(res.data!.addUserTags).toEqual([{ id: 'dup-1', tags: ['a', 'b', 'c'] }]);
    const calls = callsOf(rig.emulator, 'im_add_tag');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.body).toEqual({ UserTags: [{ To_Account: 'dup-1', Tags: ['a', 'b', 'c'] }] });
  });

  it('counts 12 copies of one tag as one tag, not as two calls', async () => {
    const res = await add([{ id: 'dup-2', tags: Array.from({ length: 12 }, () => 'same') }]);
    expect(res.errors).toBeUndefined();
    expect(callsOf(rig.emulator, 'im_add_tag')).toHaveLength(1);
    expect(stored('dup-2')).toEqual(['same']);
  });
});

describe('validation before any upstream call', () => {
  const han17 = '标'.repeat(17); // 17 x 3 bytes = 51 bytes of UTF-8, 17 UTF-16 units
  const han16plus2 = `${'标'.repeat(16)}ab`; // exactly 50 bytes

  it.each<[string, string, Record<string, unknown>, RegExp]>([
    ['a 51-byte ASCII tag', ADD, { input: [{ id: 'v-1', tags: ['a'.repeat(51)] }] }, /"a{51}".*51 bytes/],
    [
      'a 51-byte tag of 17 Chinese characters',
      ADD,
      { input: [{ id: 'v-1', tags: ['ok', han17] }] },
      new RegExp(`${han17}.*51 bytes`),
    ],
    ['an empty tag', REMOVE, { input: [{ id: 'v-1', tags: ['ok', ''] }] }, /Tag "" for user "v-1" is empty/],
    [
      'an empty tag list',
      ADD,
      {
        input: [
          { id: 'v-1', tags: ['ok'] },
          { id: 'v-2', tags: [] },
        ],
      },
      /"v-2".*empty/,
    ],
    ['an empty input list', ADD, { input: [] }, /at least one user/],
    ['an empty id list', REMOVE_ALL, { ids: [] }, /at least one user/],
    ['an empty id', ADD, { input: [{ id: '', tags: ['ok'] }] }, /User id ""/],
    ['an id over 32 bytes', REMOVE, { input: [{ id: 'x'.repeat(33), tags: ['ok'] }] }, /User id "x{33}"/],
    ['a non-ASCII id', REMOVE_ALL, { ids: ['fine', '用户'] }, /User id "用户"/],
    [
      'a bad user after good ones',
      ADD,
      { input: [...ids(150, 'v-ok-').map((id) => ({ id, tags: ['t'] })), { id: 'v-late', tags: ['b'.repeat(51)] }] },
      /"v-late"/,
    ],
    [
      'more than 100 distinct tags for one user',
      ADD,
      { input: [{ id: 'v-101', tags: tagList(101) }] },
      /"v-101".*101 tags/,
    ],
  ])(
    'refuses %s with BAD_USER_INPUT naming the offender, and sends nothing',
    async (_what, mutation, variables, names) => {
      const res = await rig.query(mutation, variables);
      expect(res.data ?? null).toBeNull();
      expect(res.errors).toHaveLength(1);
      expect(res.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
      expect(res.errors![0]!.message).toMatch(names);
      expect(rig.emulator.calls).toEqual([]);
    },
  );

  it('counts the tags of a user named twice together against the 100 a user may hold', async () => {
    const res = await add([
      { id: 'v-twice', tags: tagList(60, 'first-') },
      { id: 'v-other', tags: ['x'] },
      { id: 'v-twice', tags: tagList(60, 'second-') },
    ]);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', id: 'v-twice' });
    expect(res.errors![0]!.message).toMatch(/"v-twice".*120 tags/);
    expect(rig.emulator.calls).toEqual([]);
  });

  it('lets removeUserTags name more than 100 tags: removing a tag not held is harmless', async () => {
    rig.emulator.store.setTags('v-rm-many', ['t3', 'keep']);
    const res = await remove([{ id: 'v-rm-many', tags: tagList(120) }]);
    expect(res.errors).toBeUndefined();
    expect(res.data!.removeUserTags).toEqual([{ id: 'v-rm-many', tags: ['keep'] }]);
    expect(callsOf(rig.emulator, 'im_remove_tag')).toHaveLength(12);
  });

  it('names the offending tag and user in extensions', async () => {
    const res = await add([{ id: 'v-ext', tags: [han17] }]);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', id: 'v-ext', tag: han17 });
    const badId = await removeAll(['ok', 'é']);
    expect(badId.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', id: 'é' });
    expect(rig.emulator.calls).toEqual([]);
  });

  it('accepts a tag of exactly 50 bytes, multi-byte characters included', async () => {
    const res = await add([{ id: 'v-50', tags: [han16plus2, 'z'.repeat(50)] }]);
    expect(res.errors).toBeUndefined();
    expect(stored('v-50')).toEqual([han16plus2, 'z'.repeat(50)]);
  });

  it('counts mutation ids against MAX_IDS_PER_REQUEST', async () => {
    const small = await startRig({ env: { MAX_IDS_PER_REQUEST: '3' }, sharedEmulator: rig });
    try {
      const res = await add(
        ids(4, 'v-max-').map((id) => ({ id, tags: ['t'] })),
        small,
      );
      expect(res.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
      const all = await removeAll(ids(4, 'v-max-'), small);
      expect(all.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
      expect(rig.emulator.calls).toEqual([]);
    } finally {
      await small.close();
    }
  });
});

describe('a call that fails part-way', () => {
  type WriteError = NonNullable<GraphQLResponse['errors']>[number];

  it('fails exactly the users of the failed call, writes the others, and says which is which', async () => {
    const accounts = ids(250, 'part-');
    rig.emulator.injectFault(
      { errorCode: 70402, errorInfo: 'injected refusal', command: 'im_add_tag' },
      { skip: 1, count: 1 },
    );
    const res = await add(accounts.map((id) => ({ id, tags: ['p'] })));

    const calls = callsOf(rig.emulator, 'im_add_tag');
    expect(calls.map((c) => [c.accounts.length, c.errorCode])).toEqual([
      [100, 0],
      [100, 70402],
      [50, 0],
    ]);
    const failed = calls[1]!.accounts;
    const failedSet = new Set(failed);
    const written = accounts.filter((a) => !failedSet.has(a));
    expect(written).toHaveLength(150);

    // The store: the failed call's users untouched, everyone else written.
    for (const a of failed) expect(stored(a)).toEqual([]);
    for (const a of written) expect(stored(a)).toEqual(['p']);

    // The answer: every user once, in input order; the failed ones null with an error at their path.
    const users = res.data!.addUserTags;
    expect(users.map((u) => u.id)).toEqual(accounts);
    users.forEach((u) => expect(u.tags).toEqual(failedSet.has(u.id) ? null : ['p']));
    const errors = res.errors as WriteError[];
    expect(errors).toHaveLength(failed.length);
    expect(sorted(errors.map((e) => String(e.path![1])))).toEqual(
      sorted(failed.map((a) => String(accounts.indexOf(a)))),
    );
    for (const e of errors) {
      expect(e.path![0]).toBe('addUserTags');
      expect(e.path![2]).toBe('tags');
      expect(e.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', timErrorCode: 70402 });
      expect(e.extensions!.failedIds).toEqual(failed);
    }
  });

  it("names in each error's failedIds the users of its own failed call, and keeps the answer linear in size", async () => {
    const accounts = ids(1000, 'all-fail-');
    rig.emulator.injectFault({ errorCode: 70402, command: 'im_add_tag' }, { count: Infinity });
    const res = await add(accounts.map((id) => ({ id, tags: ['z'] })));
    const calls = callsOf(rig.emulator, 'im_add_tag');
    expect(calls).toHaveLength(10);
    expect(res.data!.addUserTags.every((u) => u.tags === null)).toBe(true);
    expect(res.errors).toHaveLength(1000);
    const callOf = new Map(calls.flatMap((c) => c.accounts.map((a) => [a, c.accounts] as const)));
    for (const e of res.errors!) {
      const account = accounts[e.path![1] as number]!;
      expect(e.extensions!.failedIds).toEqual(callOf.get(account));
    }
    // Every user's error with the mutation's whole list of 1,000 ids would be about 11 MB.
    expect(res.body.length).toBeLessThan(2_500_000);
    for (const a of accounts.slice(0, 5)) expect(stored(a)).toEqual([]);
  });

  it('reports a user failed when any of its calls failed, and a retry of the same mutation completes it', async () => {
    const tags = tagList(25, 'retry-');
    rig.emulator.injectFault({ errorCode: 70402, command: 'im_add_tag' }, { skip: 1, count: 1 });
    const res = await add([
      { id: 'retry-a', tags },
      { id: 'retry-b', tags: ['one'] },
    ]);
    // Round one (both users) went through; round two (retry-a alone) failed; round three went through.
    expect(callsOf(rig.emulator, 'im_add_tag').map((c) => c.errorCode)).toEqual([0, 70402, 0]);
    expect(res.data!.addUserTags).toEqual([
      { id: 'retry-a', tags: null },
      { id: 'retry-b', tags: ['one'] },
    ]);
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.path).toEqual(['addUserTags', 0, 'tags']);
    expect(res.errors![0]!.extensions).toMatchObject({
      code: 'UPSTREAM_ERROR',
      failedIds: ['retry-a'],
      timErrorCode: 70402,
    });
    expect(stored('retry-a')).toHaveLength(15);

    // Adds are idempotent: sending the whole mutation again is safe and completes the write.
    const again = await add([
      { id: 'retry-a', tags },
      { id: 'retry-b', tags: ['one'] },
    ]);
    expect(again.errors).toBeUndefined();
    expect(sorted(again.data!.addUserTags[0]!.tags!)).toEqual(sorted(tags));
    expect(again.data!.addUserTags[1]).toEqual({ id: 'retry-b', tags: ['one'] });
    expect(sorted(stored('retry-a'))).toEqual(sorted(tags));
  });

  it('fails removeAllUserTags the same way, leaving the failed users their tags', async () => {
    const accounts = ids(201, 'rapart-');
    for (const a of accounts) rig.emulator.store.setTags(a, ['keep']);
    rig.emulator.injectFault({ errorCode: 90009, command: 'im_remove_all_tags' }, { skip: 1, count: 1 });
    const res = await removeAll(accounts);
    const failed = callsOf(rig.emulator, 'im_remove_all_tags')[1]!.accounts;
    expect(failed).toHaveLength(100);
    const failedSet = new Set(failed);
    for (const a of accounts) expect(stored(a)).toEqual(failedSet.has(a) ? ['keep'] : []);
    const users = res.data!.removeAllUserTags;
    users.forEach((u) => expect(u.tags).toEqual(failedSet.has(u.id) ? null : []));
    expect(res.errors).toHaveLength(100);
    expect(res.errors![0]!.extensions).toMatchObject({
      code: 'UPSTREAM_ERROR',
      timErrorCode: 90009,
      failedIds: failed,
    });
  });

  it('reports an unreadable answer to a write as UPSTREAM_UNAVAILABLE with failedIds, without retrying it', async () => {
    rig.emulator.injectFault({ garbage: true, command: 'im_remove_tag' }, { count: 1 });
    rig.emulator.store.setTags('garbled', ['x']);
    const res = await remove([{ id: 'garbled', tags: ['x'] }]);
    expect(res.data!.removeUserTags).toEqual([{ id: 'garbled', tags: null }]);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', failedIds: ['garbled'] });
    expect(res.errors![0]!.extensions!.timErrorCode).toBeUndefined();
    expect(callsOf(rig.emulator, 'im_remove_tag')).toHaveLength(1);
  });

  it('retries a write whose answer was lost after the upstream applied it, and reports it written once', async () => {
    const impatient = await startRig({ env: { TIM_TIMEOUT_MS: '300' }, sharedEmulator: rig });
    try {
      // The emulator applies the call at once but answers after the gateway has given up on it.
      rig.emulator.injectFault({ hangMs: 1500, command: 'im_add_tag' }, { count: 1 });
      const res = await add([{ id: 'lost-answer', tags: ['once', 'twice'] }], impatient);
      expect(res.errors).toBeUndefined();
      expect(res.data!.addUserTags).toEqual([{ id: 'lost-answer', tags: ['once', 'twice'] }]);
      const calls = callsOf(rig.emulator, 'im_add_tag');
      expect(calls).toHaveLength(2);
      expect(calls.every((c) => c.errorCode === 0)).toBe(true); // both applied; the second changed nothing
      expect(stored('lost-answer')).toEqual(['once', 'twice']);
    } finally {
      await impatient.close();
    }
  });

  it('retries a retryable failure of a write call, and then reports success', async () => {
    rig.emulator.injectFault({ errorCode: 70500, command: 'im_add_tag' }, { count: 1 });
    const res = await add([{ id: 'flaky', tags: ['x'] }]);
    expect(res.errors).toBeUndefined();
    expect(res.data!.addUserTags).toEqual([{ id: 'flaky', tags: ['x'] }]);
    expect(callsOf(rig.emulator, 'im_add_tag').map((c) => c.errorCode)).toEqual([70500, 0]);
  });
});

describe('limits the emulator enforces on what users hold', () => {
  it('refuses a user over 100 tags with UPSTREAM_ERROR 70402 and leaves the store unchanged', async () => {
    const held = tagList(95, 'held-');
    rig.emulator.store.setTags('full', held);
    rig.emulator.store.setTags('bystander', []);
    const res = await add([
      { id: 'full', tags: tagList(6, 'more-') },
      { id: 'bystander', tags: ['b'] },
    ]);
    // Both users went in the one call, which the upstream refused whole.
    expect(callsOf(rig.emulator, 'im_add_tag')).toHaveLength(1);
    expect(res.data!.addUserTags).toEqual([
      { id: 'full', tags: null },
      { id: 'bystander', tags: null },
    ]);
    expect(res.errors).toHaveLength(2);
    for (const e of res.errors!) {
      expect(e.extensions).toMatchObject({
        code: 'UPSTREAM_ERROR',
        timErrorCode: 70402,
        failedIds: ['full', 'bystander'],
      });
      expect(e.message).toMatch(/100 tags per account/);
    }
    expect(stored('full')).toEqual(held);
    expect(stored('bystander')).toEqual([]);

    // Up to the limit is fine.
    const ok = await add([{ id: 'full', tags: tagList(5, 'more-') }]);
    expect(ok.errors).toBeUndefined();
    expect(ok.data!.addUserTags[0]!.tags).toHaveLength(100);
  });

  it('refuses a tag that would be the 1,001st distinct tag of the app, and keeps the store unchanged', async () => {
    const filler = ids(10, 'app-fill-');
    const before = rig.emulator.store.distinctTags();
    try {
      // Fill the app up to exactly 1,000 distinct tags.
      const needed = 1000 - before;
      filler.forEach((a, i) =>
        rig.emulator.store.setTags(a, tagList(Math.max(0, Math.min(100, needed - i * 100)), `app-${i}-`)),
      );
      expect(rig.emulator.store.distinctTags()).toBe(1000);
      const res = await add([{ id: 'app-new', tags: ['brand-new-tag'] }]);
      expect(res.errors![0]!.extensions).toMatchObject({
        code: 'UPSTREAM_ERROR',
        timErrorCode: 70402,
        failedIds: ['app-new'],
      });
      expect(res.errors![0]!.message).toMatch(/distinct tags per app/);
      expect(stored('app-new')).toEqual([]);
      expect(rig.emulator.store.distinctTags()).toBe(1000);
      // A tag the app already has may still be given to anyone.
      const reuse = await add([{ id: 'app-new', tags: ['app-0-0'] }]);
      expect(reuse.errors).toBeUndefined();
      expect(stored('app-new')).toEqual(['app-0-0']);
    } finally {
      rig.emulator.store.removeAll([...filler, 'app-new']);
    }
  });
});

describe('read-your-writes with the tag cache on', () => {
  let cached: TestRig;
  beforeAll(async () => {
    cached = await startRig({ env: { TAGS_CACHE_TTL_MS: '60000' }, sharedEmulator: rig });
  });
  afterAll(() => cached.close());

  it('serves a repeated read from cache, yet a write shows at once in its own answer and in the next read', async () => {
    rig.emulator.store.setTags('ryw-1', ['old']);
    rig.emulator.store.setTags('ryw-2', ['keep']);
    expect(await read(['ryw-1', 'ryw-2'], cached)).toEqual([
      { id: 'ryw-1', tags: ['old'] },
      { id: 'ryw-2', tags: ['keep'] },
    ]);
    rig.emulator.resetCalls();
    expect(await read(['ryw-1', 'ryw-2'], cached)).toEqual([
      { id: 'ryw-1', tags: ['old'] },
      { id: 'ryw-2', tags: ['keep'] },
    ]);
    expect(rig.emulator.calls).toEqual([]); // the cache is really on

    const added = await add([{ id: 'ryw-1', tags: ['new'] }], cached);
    expect(added.errors).toBeUndefined();
    expect(added.data!.addUserTags).toEqual([{ id: 'ryw-1', tags: ['old', 'new'] }]);
    expect(await read(['ryw-1', 'ryw-2'], cached)).toEqual([
      { id: 'ryw-1', tags: ['old', 'new'] },
      { id: 'ryw-2', tags: ['keep'] },
    ]);

    const removed = await remove([{ id: 'ryw-1', tags: ['old'] }], cached);
    expect(removed.data!.removeUserTags).toEqual([{ id: 'ryw-1', tags: ['new'] }]);
    expect(await read(['ryw-1'], cached)).toEqual([{ id: 'ryw-1', tags: ['new'] }]);

    const cleared = await removeAll(['ryw-1', 'ryw-2'], cached);
    expect(cleared.data!.removeAllUserTags).toEqual([
      { id: 'ryw-1', tags: [] },
      { id: 'ryw-2', tags: [] },
    ]);
    expect(await read(['ryw-1', 'ryw-2'], cached)).toEqual([
      { id: 'ryw-1', tags: [] },
      { id: 'ryw-2', tags: [] },
    ]);
  });

  it('drops the cached tags of a user whose write failed too', async () => {
    rig.emulator.store.setTags('ryw-3', ['a']);
    expect(await read(['ryw-3'], cached)).toEqual([{ id: 'ryw-3', tags: ['a'] }]);
    // The call fails after the upstream applied it (a lost answer): the next read must not serve the old tags.
    rig.emulator.store.setTags('ryw-3', ['a', 'b']);
    rig.emulator.injectFault({ errorCode: 70402, command: 'im_add_tag' }, { count: 1 });
    const res = await add([{ id: 'ryw-3', tags: ['b'] }], cached);
    expect(res.data!.addUserTags).toEqual([{ id: 'ryw-3', tags: null }]);
    expect(await read(['ryw-3'], cached)).toEqual([{ id: 'ryw-3', tags: ['a', 'b'] }]);
  });

  it('shows the writes of earlier mutation fields to later fields of the same request', async () => {
    rig.emulator.store.setTags('ryw-4', ['a']);
    const res = await cached.query<Record<string, UserOut[]>>(
      `mutation {
        first: addUserTags(input: [{ id: "ryw-4", tags: ["b"] }]) { id tags }
        second: removeUserTags(input: [{ id: "ryw-4", tags: ["a"] }]) { id tags }
        third: addUserTags(input: [{ id: "ryw-4", tags: ["c"] }]) { id tags }
      }`,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({
      first: [{ id: 'ryw-4', tags: ['a', 'b'] }],
      second: [{ id: 'ryw-4', tags: ['b'] }],
      third: [{ id: 'ryw-4', tags: ['b', 'c'] }],
    });
  });
});

describe('what the write path sends', () => {
  it('never sends a call over 100 accounts or 10 tags for one account', async () => {
    const res = await add(ids(130, 'shape-').map((id, i) => ({ id, tags: tagList(1 + (i % 23), 's') })));
    expect(res.errors).toBeUndefined();
    const calls = writeCalls();
    expect(calls.length).toBeGreaterThan(1);
    for (const call of calls) {
      const entries = (call.body as { UserTags: Array<{ To_Account: string; Tags: string[] }> }).UserTags;
      expect(entries.length).toBeLessThanOrEqual(100);
      for (const e of entries) expect(e.Tags.length).toBeLessThanOrEqual(10);
      expect(call.errorCode).toBe(0);
    }
    ids(130, 'shape-').forEach((a, i) => expect(sorted(stored(a))).toEqual(sorted(tagList(1 + (i % 23), 's'))));
  });
});
