import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TimEmulator } from '../../src/emulator/index.js';
import { callTim, codeOf, startEmulator, tagsNamed } from './harness.js';

let emulator: TimEmulator;
beforeAll(async () => {
  emulator = await startEmulator({
    seed: [
      { To_Account: 'alice', Tags: ['vip', 'lang:en'] },
      { To_Account: 'frank', Tags: [] },
    ],
  });
});
afterAll(() => emulator.close());
afterEach(() => {
  emulator.store.setTags('alice', ['vip', 'lang:en']);
  for (const account of emulator.store.accounts()) if (account !== 'alice') emulator.store.setTags(account, []);
});

const hundredAndOne = Array.from({ length: 101 }, (_, i) => `u${i}`);

describe('im_get_tag', () => {
  it('leaves out accounts without tags by default, and never-seen accounts exist', async () => {
    const { json } = await callTim(emulator, 'im_get_tag', { To_Account: ['alice', 'frank', 'nobody'] });
    expect(json).toMatchObject({ ActionStatus: 'OK', UserTags: [{ To_Account: 'alice', Tags: ['vip', 'lang:en'] }] });
    expect(json?.ErrorList).toBeUndefined();
  });

  it('answers 90018 to 101 accounts, and takes 100', async () => {
    expect(await codeOf(emulator, 'im_get_tag', { To_Account: hundredAndOne })).toBe(90018);
    expect(await codeOf(emulator, 'im_get_tag', { To_Account: hundredAndOne.slice(1) })).toBe(0);
  });

  it.each([
    ['no To_Account', {}],
    ['To_Account not an array', { To_Account: 'alice' }],
    ['an account that is not a string', { To_Account: ['alice', 7] }],
    ['an empty account', { To_Account: [''] }],
    ['an account over 32 bytes', { To_Account: ['x'.repeat(33)] }],
    ['a body that is not an object', ['alice']],
  ])('answers 70402 to %s', async (_name, body) => {
    expect(await codeOf(emulator, 'im_get_tag', body)).toBe(70402);
  });
});

describe('im_get_tag options', () => {
  it("answers Tags: [] for an account without tags when emptyTags is 'empty'", async () => {
    const e = await startEmulator({ seed: 'empty', emptyTags: 'empty' });
    try {
      const { json } = await callTim(e, 'im_get_tag', { To_Account: ['someone'] });
      expect(json?.UserTags).toEqual([{ To_Account: 'someone', Tags: [] }]);
    } finally {
      await e.close();
    }
  });

  it('reports unknown accounts with 70107 in strictAccounts mode, and writes create accounts', async () => {
    const e = await startEmulator({
      seed: [{ To_Account: 'frank', Tags: [] }],
      strictAccounts: true,
      emptyTags: 'empty',
    });
    try {
      const first = await callTim(e, 'im_get_tag', { To_Account: ['frank', 'ghost'] });
      expect(first.json).toMatchObject({
        ActionStatus: 'OK',
        ErrorCode: 0,
        UserTags: [{ To_Account: 'frank', Tags: [] }],
        ErrorList: [{ To_Account: 'ghost', ErrorCode: 70107 }],
      });
      expect(await codeOf(e, 'im_remove_all_tags', { To_Account: ['ghost'] })).toBe(0);
      const second = await callTim(e, 'im_get_tag', { To_Account: ['ghost'] });
      expect(second.json?.UserTags).toEqual([{ To_Account: 'ghost', Tags: [] }]);
      expect(second.json?.ErrorList).toBeUndefined();
    } finally {
      await e.close();
    }
  });

  it('seeds data/demo-users.json by default', async () => {
    const e = await startEmulator();
    try {
      expect(e.store.accounts()).toHaveLength(300);
      expect(e.store.getTags('frank')).toEqual([]);
      expect(e.store.getTags('erin').length).toBeGreaterThanOrEqual(2);
    } finally {
      await e.close();
    }
  });
});

describe('writes', () => {
  it('adds and removes as sets, keeping insertion order', async () => {
    const add = {
      UserTags: [
        { To_Account: 'alice', Tags: ['plan:pro', 'vip'] },
        { To_Account: 'bob', Tags: ['x'] },
      ],
    };
    expect(await codeOf(emulator, 'im_add_tag', add)).toBe(0);
    expect(await codeOf(emulator, 'im_add_tag', add)).toBe(0);
    expect(emulator.store.getTags('alice')).toEqual(['vip', 'lang:en', 'plan:pro']);
    expect(emulator.store.getTags('bob')).toEqual(['x']);
    const remove = { UserTags: [{ To_Account: 'alice', Tags: ['vip', 'never-held'] }] };
    expect(await codeOf(emulator, 'im_remove_tag', remove)).toBe(0);
    expect(await codeOf(emulator, 'im_remove_tag', remove)).toBe(0);
    expect(emulator.store.getTags('alice')).toEqual(['lang:en', 'plan:pro']);
    expect(await codeOf(emulator, 'im_remove_all_tags', { To_Account: ['alice', 'bob'] })).toBe(0);
    expect(emulator.store.getTags('alice')).toEqual([]);
    expect(emulator.store.distinctTags()).toBe(0);
  });

  it('answers 90018 to 101 accounts in any command', async () => {
    const userTags = hundredAndOne.map((a) => ({ To_Account: a, Tags: ['t'] }));
    expect(await codeOf(emulator, 'im_add_tag', { UserTags: userTags })).toBe(90018);
    expect(await codeOf(emulator, 'im_remove_tag', { UserTags: userTags })).toBe(90018);
    expect(await codeOf(emulator, 'im_remove_all_tags', { To_Account: hundredAndOne })).toBe(90018);
  });

  it.each([
    ['more than 10 tags for one account', 90032, { UserTags: [{ To_Account: 'alice', Tags: tagsNamed('t', 11) }] }],
    ['an empty tag', 90040, { UserTags: [{ To_Account: 'alice', Tags: ['ok', ''] }] }],
    ['a tag over 50 bytes', 90020, { UserTags: [{ To_Account: 'alice', Tags: ['é'.repeat(26)] }] }],
    ['UserTags missing', 70402, { To_Account: ['alice'] }],
    ['Tags not an array', 70402, { UserTags: [{ To_Account: 'alice', Tags: 'vip' }] }],
    ['a tag that is not a string', 70402, { UserTags: [{ To_Account: 'alice', Tags: [1] }] }],
    ['an entry without To_Account', 70402, { UserTags: [{ Tags: ['vip'] }] }],
  ])('refuses %s with %i and changes nothing', async (_name, code, body) => {
    const good = { To_Account: 'carol', Tags: ['would-be-added'] };
    const withGoodEntryFirst = 'UserTags' in body ? { UserTags: [good, ...(body.UserTags as object[])] } : body;
    const before = emulator.store.snapshot();
    expect(await codeOf(emulator, 'im_add_tag', withGoodEntryFirst)).toBe(code);
    expect(emulator.store.snapshot()).toEqual(before);
  });

  it('applies the per-call tag rules to im_remove_tag too', async () => {
    expect(
      await codeOf(emulator, 'im_remove_tag', { UserTags: [{ To_Account: 'alice', Tags: tagsNamed('t', 11) }] }),
    ).toBe(90032);
    expect(await codeOf(emulator, 'im_remove_tag', { UserTags: [{ To_Account: 'alice', Tags: [''] }] })).toBe(90040);
  });

  it('takes a 50-byte tag and 10 tags for one account', async () => {
    const body = { UserTags: [{ To_Account: 'carol', Tags: ['é'.repeat(25), ...tagsNamed('t', 9)] }] };
    expect(await codeOf(emulator, 'im_add_tag', body)).toBe(0);
  });

  it('answers 70402 naming the limit when an account would hold over 100 tags, changing nothing', async () => {
    emulator.store.setTags('carol', tagsNamed('held', 95));
    const before = emulator.store.snapshot();
    // Each entry is fine on its own; together carol would hold 105 tags.
    const body = {
      UserTags: [
        { To_Account: 'dave', Tags: ['x'] },
        { To_Account: 'carol', Tags: tagsNamed('new', 5) },
        { To_Account: 'carol', Tags: tagsNamed('more', 5) },
      ],
    };
    const { json } = await callTim(emulator, 'im_add_tag', body);
    expect(json).toMatchObject({ ActionStatus: 'FAIL', ErrorCode: 70402 });
    expect(json?.ErrorInfo).toMatch(/105 tags.*100 tags per account/);
    expect(emulator.store.snapshot()).toEqual(before);
    // Tags it already holds do not count twice.
    expect(
      await codeOf(emulator, 'im_add_tag', {
        UserTags: [{ To_Account: 'carol', Tags: ['held0', ...tagsNamed('new', 5)] }],
      }),
    ).toBe(0);
    expect(emulator.store.getTags('carol')).toHaveLength(100);
  });

  it('answers 70402 naming the limit when the app would hold over 1,000 distinct tags', async () => {
    const fill = Array.from({ length: 100 }, (_, i) => ({ To_Account: `filler${i}`, Tags: tagsNamed(`f${i}-`, 10) }));
    fill[0]!.Tags = ['vip', ...tagsNamed('f0-', 9)]; // vip is alice's already: 998 + vip + lang:en = 1,000
    fill[1]!.Tags = tagsNamed('f1-', 9);
    expect(await codeOf(emulator, 'im_add_tag', { UserTags: fill })).toBe(0);
    expect(emulator.store.distinctTags()).toBe(1000);
    const before = emulator.store.snapshot();
    const { json } = await callTim(emulator, 'im_add_tag', {
      UserTags: [{ To_Account: 'alice', Tags: ['brand-new'] }],
    });
    expect(json).toMatchObject({ ErrorCode: 70402 });
    expect(json?.ErrorInfo).toMatch(/1001 distinct tags.*1000 distinct tags per app/);
    expect(emulator.store.snapshot()).toEqual(before);
    // Existing tags can still be spread at the limit.
    expect(await codeOf(emulator, 'im_add_tag', { UserTags: [{ To_Account: 'bob', Tags: ['f5-1'] }] })).toBe(0);
  });
});
