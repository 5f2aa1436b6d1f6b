/** Issue 4: what is retried, and how long the backoff waits. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TimError } from '../../src/tim/errors.js';
import { backoffMs, DEFAULT_RETRY, nextStep } from '../../src/upstream/retry.js';

const policy = { maxAttempts: 4, baseDelayMs: 50, maxDelayMs: 1000 };

describe('backoffMs', () => {
  it('stays between half and all of the doubling cap, never over the maximum', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, r) => {
          const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
          const ms = backoffMs(policy, attempt, () => r);
          expect(ms).toBeGreaterThanOrEqual(Math.floor(cap / 2));
          expect(ms).toBeLessThanOrEqual(cap);
        },
      ),
    );
  });

  it('doubles per attempt up to the maximum', () => {
    const top = (attempt: number) => backoffMs(policy, attempt, () => 0.999999);
    expect([1, 2, 3, 4, 5, 6].map(top)).toEqual([50, 100, 200, 400, 800, 1000]);
    expect(top(30)).toBe(1000);
  });

  it('spreads callers: the same attempt waits different times', () => {
    const waits = new Set(Array.from({ length: 50 }, () => backoffMs(policy, 3)));
    expect(waits.size).toBeGreaterThan(10);
  });
});

describe('nextStep', () => {
  const fail = (code: number) => TimError.fail(code, 'x');

  it.each([91000, 60007, 60011, 70169, 70500])('retries TIM %i with a backoff', (code) => {
    const step = nextStep(policy, fail(code), 1, false);
    expect(step.action).toBe('retry');
    expect(step.action === 'retry' && step.delayMs).toBeGreaterThanOrEqual(25);
  });

  it('retries HTTP 5xx, network errors and timeouts', () => {
    expect(nextStep(policy, TimError.unavailable('HTTP 502', 502), 1, false).action).toBe('retry');
    expect(nextStep(policy, TimError.unavailable('HTTP 503', 503), 1, false).action).toBe('retry');
    expect(nextStep(policy, TimError.unavailable('ECONNRESET'), 1, false).action).toBe('retry');
    expect(nextStep(policy, TimError.unavailable('timed out'), 1, false).action).toBe('retry');
  });

  it.each([90001, 90009, 90018, 70002, 70003, 70005, 70009, 70013, 70014, 70050, 70402, 60006])(
    'never retries TIM %i',
    (code) => {
      expect(nextStep(policy, fail(code), 1, false)).toEqual({ action: 'give-up' });
    },
  );

  it('does not retry an unreadable answer or an HTTP 4xx', () => {
    expect(nextStep(policy, TimError.unavailable('not a TIM answer', 200), 1, false)).toEqual({ action: 'give-up' });
    expect(nextStep(policy, TimError.unavailable('HTTP 404', 404), 1, false)).toEqual({ action: 'give-up' });
  });

  it('signs anew once for 70001, then gives up', () => {
    expect(nextStep(policy, fail(70001), 1, false)).toEqual({ action: 'renew-sig' });
    expect(nextStep(policy, fail(70001), 2, true)).toEqual({ action: 'give-up' });
  });

  it('gives up after the last attempt', () => {
    expect(nextStep(policy, fail(91000), policy.maxAttempts - 1, false).action).toBe('retry');
    expect(nextStep(policy, fail(91000), policy.maxAttempts, false)).toEqual({ action: 'give-up' });
  });

  it('has defaults that fit several attempts in a request', () => {
    expect(DEFAULT_RETRY.maxAttempts).toBeGreaterThanOrEqual(3);
    let total = 0;
    for (let a = 1; a < DEFAULT_RETRY.maxAttempts; a++)
      total += Math.min(DEFAULT_RETRY.maxDelayMs, DEFAULT_RETRY.baseDelayMs * 2 ** (a - 1));
    expect(total).toBeLessThan(2000);
  });
});
