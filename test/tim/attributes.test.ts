/** Issue 11: the attribute commands' answers and write plans. */
import { describe, expect, it } from 'vitest';
import {
  attrNamesBody,
  planAttrRemovals,
  planAttrWrites,
  readAttrNames,
  readGetAttrAnswer,
} from '../../src/tim/attributes.js';
import { accountsIn } from '../../src/tim/commands.js';
import { TimError } from '../../src/tim/errors.js';
import type { GetAttrAnswer } from '../../src/tim/wire.js';

const OK = { ActionStatus: 'OK', ErrorCode: 0, ErrorInfo: '' } as const;
const ids = (n: number) => Array.from({ length: n }, (_, i) => `u${i}`);

describe('readGetAttrAnswer', () => {
  it('reads by To_Account in any order; left out or Attrs {} is none; non-string values are skipped', () => {
    const answer = {
      ...OK,
      UserAttrs: [
        { To_Account: 'b', Attrs: { city: 'sz', n: 3 } },
        { To_Account: 'a', Attrs: {} },
        { To_Account: 'stranger', Attrs: { city: 'x' } },
      ],
    } as unknown as GetAttrAnswer;
    const read = readGetAttrAnswer(['a', 'b', 'c'], answer);
    expect([...read]).toEqual([
      ['a', {}],
      ['b', { city: 'sz' }],
      ['c', {}],
    ]);
  });

  it("gives an ErrorList entry's account its own error, and refuses a UserAttrs that is not a list", () => {
    const read = readGetAttrAnswer(['a', 'b'], { ...OK, ErrorList: [{ To_Account: 'a', ErrorCode: 70107 }] });
    expect((read.get('a') as TimError).code).toBe(70107);
    expect(read.get('b')).toEqual({});
    expect(() => readGetAttrAnswer(['a'], { ...OK, UserAttrs: {} } as unknown as GetAttrAnswer)).toThrow(TimError);
  });
});

describe('attribute names', () => {
  it('reads slots 0 to 9 with a name, in slot order, and writes them back as the whole map', () => {
    const slots = readAttrNames({ ...OK, AttrNames: { '2': 'lang', '0': 'city', '12': 'x', '3': '', a: 'y' } });
    expect([...slots]).toEqual([
      [0, 'city'],
      [2, 'lang'],
    ]);
    expect(attrNamesBody(slots)).toEqual({ '0': 'city', '2': 'lang' });
  });
});

describe('write plans', () => {
  it('merges a user named twice (the later value wins) and splits at 100 accounts', () => {
    const plan = planAttrWrites([
      { To_Account: 'a', Attrs: { city: 'x', plan: 'free' } },
      ...ids(150).map((To_Account) => ({ To_Account, Attrs: { lang: 'en' } })),
      { To_Account: 'a', Attrs: { city: 'y' } },
    ]);
    expect(plan.map((call) => call.length)).toEqual([100, 51]);
    expect(plan[0]![0]).toEqual({ To_Account: 'a', Attrs: { city: 'y', plan: 'free' } });
  });

  it('sends each name once per user when removing', () => {
    const plan = planAttrRemovals([
      { To_Account: 'a', Attrs: ['city', 'plan'] },
      { To_Account: 'a', Attrs: ['city'] },
    ]);
    expect(plan).toEqual([[{ To_Account: 'a', Attrs: ['city', 'plan'] }]]);
  });
});

describe('the command table', () => {
  it('reads the accounts a body names, for every shape of body', () => {
    expect(accountsIn('im_get_attr', { To_Account: ['a', 'b'] })).toEqual(['a', 'b']);
    expect(accountsIn('im_set_attr', { UserAttrs: [{ To_Account: 'a', Attrs: { x: '1' } }] })).toEqual(['a']);
    expect(accountsIn('im_remove_attr', { UserAttrs: [{ To_Account: 'c', Attrs: ['x'] }] })).toEqual(['c']);
    expect(accountsIn('im_add_tag', { UserTags: [{ To_Account: 'd', Tags: ['t'] }] })).toEqual(['d']);
    expect(accountsIn('im_get_attr_name', {})).toEqual([]);
    expect(accountsIn('im_push', { MsgRandom: 1, MsgBody: [] })).toEqual([]);
  });
});
