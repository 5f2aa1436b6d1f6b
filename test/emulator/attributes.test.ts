/** Issue 11: the emulator's five attribute commands, with every limit and code of TIM-API.md. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TimEmulator } from '../../src/emulator/index.js';
import { callTim, codeOf, startEmulator } from './harness.js';

let emulator: TimEmulator;
const NAMES = new Map([
  [0, 'sex'],
  [1, 'city'],
]);
beforeAll(async () => {
  emulator = await startEmulator({
    seed: [{ To_Account: 'alice', Tags: [] }],
    attributes: { AttrNames: { '0': 'sex', '1': 'city' }, UserAttrs: [{ To_Account: 'alice', Attrs: { city: 'sz' } }] },
  });
});
afterAll(() => emulator.close());
beforeEach(() => {
  emulator.attributes.setNames(NAMES);
  emulator.attributes.remove('alice', ['sex', 'city']);
  emulator.attributes.merge('alice', { city: 'sz' });
  emulator.clearFaults();
});

const hundredAndOne = Array.from({ length: 101 }, (_, i) => `u${i}`);
const answer = async (command: string, body: unknown) => (await callTim(emulator, command, body)).json as unknown;

describe('attribute names', () => {
  it('answers the names by slot', async () => {
    expect(await answer('im_get_attr_name', {})).toMatchObject({
      ErrorCode: 0,
      AttrNames: { '0': 'sex', '1': 'city' },
    });
  });

  it('replaces the whole map', async () => {
    expect(await codeOf(emulator, 'im_set_attr_name', { AttrNames: { '2': 'lang' } })).toBe(0);
    expect(emulator.attributes.attrNames()).toEqual({ '2': 'lang' });
  });

  it.each([
    ['a slot past 9', { AttrNames: { '10': 'x' } }],
    ['a name over 50 bytes', { AttrNames: { '0': 'x'.repeat(51) } }],
    ['an empty name', { AttrNames: { '0': '' } }],
    ['one name for two slots', { AttrNames: { '0': 'x', '1': 'x' } }],
    ['no map', {}],
  ])('answers 70402 to %s and changes nothing', async (_what, body) => {
    expect(await codeOf(emulator, 'im_set_attr_name', body)).toBe(70402);
    expect(emulator.attributes.attrNames()).toEqual({ '0': 'sex', '1': 'city' });
  });
});

describe('im_get_attr', () => {
  it('answers every account, Attrs {} for one with none', async () => {
    expect(await answer('im_get_attr', { To_Account: ['alice', 'bob'] })).toMatchObject({
      UserAttrs: [
        { To_Account: 'alice', Attrs: { city: 'sz' } },
        { To_Account: 'bob', Attrs: {} },
      ],
    });
  });

  it('answers 90018 to 101 accounts', async () => {
    expect(await codeOf(emulator, 'im_get_attr', { To_Account: hundredAndOne })).toBe(90018);
    expect(await codeOf(emulator, 'im_get_attr', { To_Account: hundredAndOne.slice(1) })).toBe(0);
  });

  it('hides a value whose name the app no longer has', async () => {
    await codeOf(emulator, 'im_set_attr_name', { AttrNames: { '0': 'sex' } });
    expect(await answer('im_get_attr', { To_Account: ['alice'] })).toMatchObject({
      UserAttrs: [{ To_Account: 'alice', Attrs: {} }],
    });
  });
});

describe('im_set_attr and im_remove_attr', () => {
  it('merges per attribute', async () => {
    expect(await codeOf(emulator, 'im_set_attr', { UserAttrs: [{ To_Account: 'alice', Attrs: { sex: 'f' } }] })).toBe(
      0,
    );
    expect(emulator.attributes.get('alice')).toEqual({ city: 'sz', sex: 'f' });
  });

  it('answers 90033 to a name the app has not named, and writes nothing of the call', async () => {
    const body = {
      UserAttrs: [
        { To_Account: 'alice', Attrs: { sex: 'm' } },
        { To_Account: 'bob', Attrs: { shoe: '42' } },
      ],
    };
    expect(await codeOf(emulator, 'im_set_attr', body)).toBe(90033);
    expect(await codeOf(emulator, 'im_remove_attr', { UserAttrs: [{ To_Account: 'alice', Attrs: ['shoe'] }] })).toBe(
      90033,
    );
    expect(emulator.attributes.get('alice')).toEqual({ city: 'sz' });
  });

  it('answers 70402 to a value over 50 bytes or empty', async () => {
    for (const value of ['x'.repeat(51), '']) {
      expect(
        await codeOf(emulator, 'im_set_attr', { UserAttrs: [{ To_Account: 'alice', Attrs: { sex: value } }] }),
      ).toBe(70402);
    }
  });

  it('answers 90018 to 101 accounts', async () => {
    const entries = hundredAndOne.map((To_Account) => ({ To_Account, Attrs: { sex: 'f' } }));
    expect(await codeOf(emulator, 'im_set_attr', { UserAttrs: entries })).toBe(90018);
    const names = hundredAndOne.map((To_Account) => ({ To_Account, Attrs: ['sex'] }));
    expect(await codeOf(emulator, 'im_remove_attr', { UserAttrs: names })).toBe(90018);
  });

  it('removes by name', async () => {
    expect(await codeOf(emulator, 'im_remove_attr', { UserAttrs: [{ To_Account: 'alice', Attrs: ['city'] }] })).toBe(0);
    expect(emulator.attributes.get('alice')).toEqual({});
  });

  it('answers 90001 to a body that is not JSON', async () => {
    const result = await callTim(emulator, 'im_set_attr', undefined, { rawBody: '{not json' });
    expect(result.json?.ErrorCode).toBe(90001);
  });

  it('plays faults and latency per command', async () => {
    emulator.injectFault({ errorCode: 91000, command: 'im_get_attr' });
    expect(await codeOf(emulator, 'im_get_tag', { To_Account: ['alice'] })).toBe(0);
    expect(await codeOf(emulator, 'im_get_attr', { To_Account: ['alice'] })).toBe(91000);
    emulator.latencyByCommand.set('im_get_attr', 150);
    try {
      expect((await callTim(emulator, 'im_get_attr', { To_Account: ['alice'] })).ms).toBeGreaterThanOrEqual(140);
      expect((await callTim(emulator, 'im_get_tag', { To_Account: ['alice'] })).ms).toBeLessThan(100);
    } finally {
      emulator.latencyByCommand.clear();
    }
  });
});

describe('the demo data', () => {
  it('names city, plan and lang, and most demo users hold some', async () => {
    const demo = await startEmulator();
    try {
      expect(Object.values(demo.attributes.attrNames())).toEqual(['city', 'plan', 'lang']);
      const holding = demo.store.accounts().filter((a) => Object.keys(demo.attributes.get(a)).length > 0);
      expect(holding.length / demo.store.accounts().length).toBeGreaterThan(0.8);
      expect(demo.attributes.get('alice')).toEqual({ city: 'singapore', plan: 'pro', lang: 'en' });
    } finally {
      await demo.close();
    }
  });

  it('finds an audience by tags and attributes', async () => {
    const demo = await startEmulator();
    try {
      const inSingapore = demo.accountsMatching({ AttrsAnd: { city: 'singapore' } });
      expect(inSingapore).toContain('alice');
      expect(inSingapore.every((a) => demo.attributes.get(a).city === 'singapore')).toBe(true);
      const vipOrBeta = demo.accountsMatching({ TagsOr: ['vip', 'beta-tester'], TagsAnd: ['lang:en'] });
      expect(vipOrBeta).toEqual(expect.arrayContaining(['alice', 'carol']));
      expect(demo.accountsMatching()).toHaveLength(demo.store.accounts().length);
    } finally {
      await demo.close();
    }
  });
});
