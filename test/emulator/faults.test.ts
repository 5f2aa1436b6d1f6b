import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { TimEmulator } from '../../src/emulator/index.js';
import { callTim, codeOf, startEmulator } from './harness.js';

let emulator: TimEmulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(() => emulator.close());
afterEach(() => {
  emulator.clearFaults();
  emulator.resetCalls();
  emulator.latencyMs = 0;
});

const get = { To_Account: ['alice'] };
const add = { UserTags: [{ To_Account: 'faulty', Tags: ['x'] }] };

describe('injected faults', () => {
  it('answers FAIL with the ErrorCode once by default, and records it', async () => {
    emulator.injectFault({ errorCode: 70169, errorInfo: 'internal timeout' });
    const { status, json } = await callTim(emulator, 'im_get_tag', get);
    expect(status).toBe(200);
    expect(json).toMatchObject({ ActionStatus: 'FAIL', ErrorCode: 70169, ErrorInfo: 'internal timeout' });
    expect(await codeOf(emulator, 'im_get_tag', get)).toBe(0);
    expect(emulator.calls.map((c) => c.errorCode)).toEqual([70169, 0]);
  });

  it('answers an HTTP status with a short non-JSON body, recorded as -1', async () => {
    emulator.injectFault({ httpStatus: 502 });
    const { status, text, json } = await callTim(emulator, 'im_get_tag', get);
    expect(status).toBe(502);
    expect(text).toBe('502 Bad Gateway');
    expect(json).toBeUndefined();
    expect(emulator.calls[0]).toMatchObject({ errorCode: -1, httpStatus: 502, accounts: ['alice'] });
  });

  it('answers garbage: HTTP 200 with a body that is not JSON', async () => {
    emulator.injectFault({ garbage: true });
    const { status, text, json } = await callTim(emulator, 'im_get_tag', get);
    expect(status).toBe(200);
    expect(text).toMatch(/^<html>/);
    expect(json).toBeUndefined();
    expect(emulator.calls[0]).toMatchObject({ errorCode: -1, httpStatus: 200 });
  });

  it('does not apply a faulted write', async () => {
    emulator.injectFault({ errorCode: 70500 });
    expect(await codeOf(emulator, 'im_add_tag', add)).toBe(70500);
    expect(emulator.store.getTags('faulty')).toEqual([]);
  });

  it('skips, counts, and picks calls by command', async () => {
    emulator.injectFault({ errorCode: 91000, command: 'im_add_tag' }, { skip: 1, count: 2 });
    const codes = [];
    for (const command of ['im_get_tag', 'im_add_tag', 'im_get_tag', 'im_add_tag', 'im_add_tag', 'im_add_tag']) {
      codes.push(await codeOf(emulator, command, command === 'im_get_tag' ? get : add));
    }
    expect(codes).toEqual([0, 0, 0, 91000, 91000, 0]);
  });

  it('lets each pending fault count its own skip, the oldest active one answering', async () => {
    emulator.injectFault({ errorCode: 1 }, { count: 2 });
    emulator.injectFault({ errorCode: 2 }, { skip: 1 });
    const codes = [];
    for (let i = 0; i < 4; i++) codes.push(await codeOf(emulator, 'im_get_tag', get));
    expect(codes).toEqual([1, 1, 2, 0]);
  });

  it('hangs hangMs and then answers normally', async () => {
    emulator.injectFault({ hangMs: 150 });
    const slow = await callTim(emulator, 'im_get_tag', get);
    expect(slow.json?.ErrorCode).toBe(0);
    expect(slow.ms).toBeGreaterThanOrEqual(140);
    const fast = await callTim(emulator, 'im_get_tag', get);
    expect(fast.ms).toBeLessThan(100);
  });

  it('refuses a malformed fault, naming the problem', () => {
    expect(() => emulator.injectFault({ httpStatus: 42 })).toThrow(/httpStatus/);
    expect(() => emulator.injectFault({ errorCode: 1 }, { count: 0 })).toThrow(/count/);
  });

  it('clearFaults drops pending faults', async () => {
    emulator.injectFault({ errorCode: 1 }, { count: Infinity });
    expect(await codeOf(emulator, 'im_get_tag', get)).toBe(1);
    emulator.clearFaults();
    expect(await codeOf(emulator, 'im_get_tag', get)).toBe(0);
  });
});

describe('latency', () => {
  it('delays every answer by latencyMs without blocking other calls', async () => {
    emulator.latencyMs = 150;
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: 10 }, () => callTim(emulator, 'im_get_tag', get)));
    const elapsed = performance.now() - started;
    for (const r of results) {
      expect(r.json?.ErrorCode).toBe(0);
      expect(r.ms).toBeGreaterThanOrEqual(140);
    }
    expect(elapsed).toBeLessThan(600);
  });

  it('adds latency to fault answers too', async () => {
    emulator.latencyMs = 100;
    emulator.injectFault({ httpStatus: 503 });
    const r = await callTim(emulator, 'im_get_tag', get);
    expect(r.status).toBe(503);
    expect(r.ms).toBeGreaterThanOrEqual(90);
  });
});
