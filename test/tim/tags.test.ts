/** The typed tag commands: how answers are read and how writes are cut into calls that fit the upstream. */
import { describe, expect, it } from 'vitest';
import { TimError } from '../../src/tim/errors.js';
import { chunk, planAccountCalls, planTagWrites, readErrorList, readGetTagAnswer } from '../../src/tim/tags.js';
import type { GetTagAnswer, UserTags } from '../../src/tim/wire.js';

const OK = { ActionStatus: 'OK', ErrorCode: 0, ErrorInfo: '' } as const;
const ids = (n: number, prefix = 'u') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const tags = (n: number, prefix = 't') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('readGetTagAnswer', () => {
  it('reads tags by To_Account, never by position', () => {
    const answer: GetTagAnswer = {
      ...OK,
      UserTags: [
        { To_Account: 'b', Tags: ['y'] },
        { To_Account: 'a', Tags: ['x', 'z'] },
      ],
    };
    const read = readGetTagAnswer(['a', 'b'], answer);
    expect(read.get('a')).toEqual({ tags: ['x', 'z'] });
    expect(read.get('b')).toEqual({ tags: ['y'] });
  });

  it('gives [] to an account left out and to one answered with Tags: [] or no Tags', () => {
    const answer = { ...OK, UserTags: [{ To_Account: 'b', Tags: [] }, { To_Account: 'c' }] } as unknown as GetTagAnswer;
    const read = readGetTagAnswer(['a', 'b', 'c'], answer);
    expect([...read]).toEqual([
      ['a', { tags: [] }],
      ['b', { tags: [] }],
      ['c', { tags: [] }],
    ]);
  });

  it('gives [] to every account when UserTags is missing', () => {
    expect([...readGetTagAnswer(['a'], { ...OK })]).toEqual([['a', { tags: [] }]]);
  });

  it('ignores accounts that were not asked for and entries that are not objects', () => {
    const answer = {
      ...OK,
      UserTags: [null, 7, { To_Account: 'intruder', Tags: ['evil'] }, { To_Account: 'a', Tags: ['x'] }],
    } as unknown as GetTagAnswer;
    const read = readGetTagAnswer(['a'], answer);
    expect([...read.keys()]).toEqual(['a']);
    expect(read.get('a')).toEqual({ tags: ['x'] });
  });

  it('keeps only string tags', () => {
    const answer = { ...OK, UserTags: [{ To_Account: 'a', Tags: ['x', 1, null, 'y'] }] } as unknown as GetTagAnswer;
    expect(readGetTagAnswer(['a'], answer).get('a')).toEqual({ tags: ['x', 'y'] });
  });

  it("gives an account in ErrorList its own TimError and leaves the others' tags alone", () => {
    const answer: GetTagAnswer = {
      ...OK,
      UserTags: [{ To_Account: 'a', Tags: ['x'] }],
      ErrorList: [{ To_Account: 'ghost', ErrorCode: 70107, ErrorInfo: 'account does not exist' }],
    };
    const read = readGetTagAnswer(['a', 'ghost'], answer);
    expect(read.get('a')).toEqual({ tags: ['x'] });
    const ghost = read.get('ghost');
    expect(ghost && 'error' in ghost).toBe(true);
    const error = (ghost as { error: TimError }).error;
    expect(error).toBeInstanceOf(TimError);
    expect(error.kind).toBe('upstream');
    expect(error.code).toBe(70107);
    expect(error.retryable).toBe(false);
  });

  it('refuses an answer whose UserTags is not a list as unavailable', () => {
    const answer = { ...OK, UserTags: { a: ['x'] } } as unknown as GetTagAnswer;
    let thrown: unknown;
    try {
      readGetTagAnswer(['a'], answer);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(TimError);
    expect((thrown as TimError).kind).toBe('unavailable');
  });

  it('refuses an answer whose ErrorList is not a list as unavailable, and skips entries that name no account', () => {
    const notAList = { ...OK, ErrorList: { ghost: 70107 } } as unknown as GetTagAnswer;
    expect(() => readGetTagAnswer(['a'], notAList)).toThrow(TimError);
    expect(() => readGetTagAnswer(['a'], notAList)).toThrow(/ErrorList/);
    const odd = {
      ...OK,
      ErrorList: [null, 7, { ErrorCode: 70107 }, { To_Account: 'b', ErrorCode: 70107 }],
    } as unknown as GetTagAnswer;
    const read = readGetTagAnswer(['a', 'b'], odd);
    expect(read.get('a')).toEqual({ tags: [] });
    expect((read.get('b') as { error: TimError }).error.code).toBe(70107);
  });
});

describe('readErrorList', () => {
  it('gives each account the upstream refused its own TimError, and nothing when there is no list', () => {
    const refused = readErrorList({
      ...OK,
      ErrorList: [{ To_Account: 'a', ErrorCode: 70107, ErrorInfo: 'no such account' }],
    });
    expect([...refused.keys()]).toEqual(['a']);
    expect(refused.get('a')).toMatchObject({ kind: 'upstream', code: 70107 });
    expect(readErrorList({ ...OK }).size).toBe(0);
    expect(readErrorList({ ...OK, ErrorList: null } as unknown as GetTagAnswer).size).toBe(0);
  });

  it('refuses a list that is not a list as an unreadable answer', () => {
    expect(() => readErrorList({ ...OK, ErrorList: 'a' } as unknown as GetTagAnswer)).toThrow(TimError);
  });
});

describe('chunk', () => {
  it('cuts a list into pieces of at most the size, in order', () => {
    expect(chunk([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunk([1, 2], 2)).toEqual([[1, 2]]);
    expect(chunk([], 3)).toEqual([]);
  });
});

describe('planAccountCalls', () => {
  it('sends each account once, in calls of at most 100', () => {
    const accounts = [...ids(250), ...ids(30)];
    const calls = planAccountCalls(accounts);
    expect(calls.map((c) => c.length)).toEqual([100, 100, 50]);
    expect(calls.flat()).toEqual(ids(250));
  });

  it('plans no call for no accounts', () => {
    expect(planAccountCalls([])).toEqual([]);
  });
});

describe('planTagWrites', () => {
  it('puts 150 users of one tag each into two calls of 100 and 50 accounts', () => {
    const calls = planTagWrites(ids(150).map((a) => ({ To_Account: a, Tags: ['x'] })));
    expect(calls.map((c) => c.length)).toEqual([100, 50]);
    expect(calls.flat().map((u) => u.To_Account)).toEqual(ids(150));
  });

  it('gives one user 25 tags in three calls of 10, 10 and 5 tags, each tag once', () => {
    const calls = planTagWrites([{ To_Account: 'a', Tags: tags(25) }]);
    expect(calls).toEqual([
      [{ To_Account: 'a', Tags: tags(25).slice(0, 10) }],
      [{ To_Account: 'a', Tags: tags(25).slice(10, 20) }],
      [{ To_Account: 'a', Tags: tags(25).slice(20) }],
    ]);
  });

  it('sends duplicate tags once, and merges an account named twice', () => {
    const calls = planTagWrites([
      { To_Account: 'a', Tags: ['x', 'x', 'y', 'x'] },
      { To_Account: 'b', Tags: ['z'] },
      { To_Account: 'a', Tags: ['y', 'w'] },
    ]);
    expect(calls).toEqual([
      [
        { To_Account: 'a', Tags: ['x', 'y', 'w'] },
        { To_Account: 'b', Tags: ['z'] },
      ],
    ]);
  });

  it('fits both limits at once: 150 users of 25 tags are six calls, none over 100 accounts or 10 tags', () => {
    const input: UserTags[] = ids(150).map((a) => ({ To_Account: a, Tags: tags(25) }));
    const calls = planTagWrites(input);
    expect(calls).toHaveLength(6);
    for (const call of calls) {
      expect(call.length).toBeLessThanOrEqual(100);
      expect(new Set(call.map((u) => u.To_Account)).size).toBe(call.length);
      for (const u of call) expect(u.Tags.length).toBeLessThanOrEqual(10);
    }
    const sent = new Map<string, string[]>();
    for (const u of calls.flat()) sent.set(u.To_Account, [...(sent.get(u.To_Account) ?? []), ...u.Tags]);
    for (const a of ids(150)) expect(sent.get(a)).toEqual(tags(25));
  });

  it('plans no call for no users', () => {
    expect(planTagWrites([])).toEqual([]);
  });
});
