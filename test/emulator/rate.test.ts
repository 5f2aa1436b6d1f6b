import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maxCallsInWindow, type RecordedCall, type TimEmulator } from '../../src/emulator/index.js';
import { SlidingWindowLimiter } from '../../src/emulator/rate.js';
import { codeOf, startEmulator } from './harness.js';

describe('the call rate over HTTP', () => {
  let emulator: TimEmulator;
  beforeAll(async () => {
    emulator = await startEmulator({ maxCallsPerSecond: 5 });
  });
  afterAll(() => emulator.close());

  it('answers 60007 past maxCallsPerSecond in a second, per command, counting every call that reached it', async () => {
    const get = { To_Account: ['alice'] };
    const codes: number[] = [];
    // A bad sig is refused, but it reached the command and counts.
    codes.push(await codeOf(emulator, 'im_get_tag', get, { query: { usersig: '' } }));
    for (let i = 0; i < 5; i++) codes.push(await codeOf(emulator, 'im_get_tag', get));
    expect(codes).toEqual([70002, 0, 0, 0, 0, 60007]);
    expect(emulator.calls.at(-1)).toMatchObject({ command: 'im_get_tag', errorCode: 60007, httpStatus: 200 });
    // Another command has its own window; an unknown command has none.
    expect(await codeOf(emulator, 'im_remove_all_tags', { To_Account: ['nobody'] })).toBe(0);
    for (let i = 0; i < 6; i++) expect(await codeOf(emulator, 'im_nothing', get)).toBe(60009);
    expect(maxCallsInWindow(emulator.calls, 1000, 'im_get_tag')).toBe(6);
    expect(maxCallsInWindow(emulator.calls, 1000, 'im_remove_all_tags')).toBe(1);
  });
});

describe('SlidingWindowLimiter', () => {
  it('slides: a call is admitted once the oldest of the last max admitted calls is windowMs old', () => {
    const limiter = new SlidingWindowLimiter(3, 1000);
    expect([0, 100, 200, 300].map((t) => limiter.admit('get', t))).toEqual([true, true, true, false]);
    expect(limiter.admit('add', 300)).toBe(true);
    expect(limiter.admit('get', 999.9)).toBe(false);
    // At 1000 the call at 0 has left the window; the refused ones never counted.
    expect(limiter.admit('get', 1000)).toBe(true);
    expect(limiter.admit('get', 1050)).toBe(false);
    expect(limiter.admit('get', 1100.5)).toBe(true);
  });

  it('lets through at most max calls in any window of a long overloaded run', () => {
    const limiter = new SlidingWindowLimiter(100, 1000);
    const admitted: number[] = [];
    for (let t = 0; t < 60_000; t += 2) if (limiter.admit('get', t)) admitted.push(t);
    const calls = admitted.map((at) => ({
      at,
      command: 'im_get_tag',
      query: {},
      body: undefined,
      accounts: [],
      errorCode: 0,
      httpStatus: 200,
    }));
    expect(maxCallsInWindow(calls)).toBe(100);
    expect(admitted.length).toBe(6000);
  });
});

describe('maxCallsInWindow', () => {
  const call = (at: number, command = 'im_get_tag'): RecordedCall => ({
    at,
    command,
    query: {},
    body: undefined,
    accounts: [],
    errorCode: 0,
    httpStatus: 200,
  });

  it('counts the most calls in any half-open window [at, at + windowMs)', () => {
    const calls = [call(0), call(500), call(999.9), call(1000), call(1500), call(1600, 'im_add_tag')];
    expect(maxCallsInWindow(calls)).toBe(4); // 999.9, 1000, 1500 and 1600: no filter, so im_add_tag counts
    expect(maxCallsInWindow(calls, 1000, 'im_get_tag')).toBe(3);
    expect(maxCallsInWindow(calls, 1000, 'im_add_tag')).toBe(1);
    expect(maxCallsInWindow(calls, 100)).toBe(2);
    expect(maxCallsInWindow([])).toBe(0);
  });

  it('does not need the calls sorted', () => {
    expect(maxCallsInWindow([call(2000), call(0), call(2500), call(1)])).toBe(2);
  });
});
