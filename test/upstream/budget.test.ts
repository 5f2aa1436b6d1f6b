/** Issue 4: the local rate budget, on a fake clock. */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SlidingWindowBudget, type BudgetSlot } from '../../src/upstream/budget.js';

const T0 = 1_700_000_000_000;

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(T0);
});
afterEach(() => {
  vi.useRealTimers();
});

const clock = () => Date.now();

/** Settles `p` if it settles within `ms` of fake time; `pending` otherwise. */
async function within<T>(p: Promise<T>, ms = 0): Promise<T | 'pending'> {
  let out: T | 'pending' = 'pending';
  void p.then((v) => (out = v));
  await vi.advanceTimersByTimeAsync(ms);
  return out;
}

/**
 * The most calls an adversarial network could make arrive in one upstream window: each call
 * may arrive anywhere between its grant and its end, so the worst window starting at `t` holds
 * every call granted before `t + window` that had not ended before `t`.
 */
function worstWindow(calls: Array<{ grantedAt: number; endedAt: number }>, windowMs = 1000): number {
  let most = 0;
  for (const { endedAt: t } of calls) {
    const n = calls.filter((c) => c.grantedAt < t + windowMs && c.endedAt >= t).length;
    most = Math.max(most, n);
  }
  return most;
}

describe('SlidingWindowBudget', () => {
  it('grants `limit` calls at once, then waits until one has been over for a whole window', async () => {
    const budget = new SlidingWindowBudget(3, 1000, clock);
    const far = T0 + 60_000;
    const slots = (await Promise.all([1, 2, 3].map(() => budget.acquireSlot(far)))) as BudgetSlot[];
    expect(slots.every(Boolean)).toBe(true);
    const fourth = budget.acquireSlot(far);
    expect(await within(fourth, 5000)).toBe('pending'); // all three still in flight: no amount of time frees one
    slots[0]!.ended(); // at T0 + 5000
    expect(await within(fourth, 999)).toBe('pending');
    const granted = await within(fourth, 1);
    expect(granted).not.toBe('pending');
    expect(granted).not.toBeNull();
    expect(Date.now()).toBe(T0 + 6000);
  });

  it('frees an unused slot at once', async () => {
    const budget = new SlidingWindowBudget(1, 1000, clock);
    const slot = (await budget.acquireSlot(T0 + 10_000))!;
    const next = budget.acquireSlot(T0 + 10_000);
    slot.unused();
    expect(await within(next)).not.toBeNull();
    expect(Date.now()).toBe(T0);
  });

  it('counts a slot reported twice once', async () => {
    const budget = new SlidingWindowBudget(2, 1000, clock);
    const a = (await budget.acquireSlot(T0 + 10_000))!;
    a.ended();
    a.ended();
    a.unused();
    expect(budget.held()).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    expect(budget.held()).toBe(0);
  });

  it('refuses at once when no slot can be had before the deadline', async () => {
    const budget = new SlidingWindowBudget(2, 1000, clock);
    await budget.acquireSlot(T0 + 10_000);
    await budget.acquireSlot(T0 + 10_000);
    // Both in flight: the soonest a slot frees is a window from now.
    expect(await within(budget.acquireSlot(T0 + 999))).toBeNull();
    expect(await within(budget.acquireSlot(T0 + 500))).toBeNull();
    expect(Date.now()).toBe(T0);
  });

  it('gives a waiting caller up at its deadline when the calls ahead never end', async () => {
    const budget = new SlidingWindowBudget(1, 1000, clock);
    await budget.acquireSlot(T0 + 10_000); // in flight, never reported
    const waiting = budget.acquireSlot(T0 + 2500);
    expect(await within(waiting, 2500)).toBe('pending');
    expect(await within(waiting, 1)).toBeNull();
  });

  it('serves waiting callers first come, first served, refusing at once one that cannot be served in time', async () => {
    const budget = new SlidingWindowBudget(1, 1000, clock);
    const first = (await budget.acquireSlot(T0 + 10_000))!;
    first.ended(); // the slot frees at T0 + 1000
    const order: string[] = [];
    const a = budget.acquireSlot(T0 + 5000).then((s) => (order.push('a'), s));
    // `a` takes the slot at T0 + 1000; the next is a window later, past this one's deadline.
    const short = budget.acquireSlot(T0 + 1500).then((s) => (order.push('short'), s));
    const b = budget.acquireSlot(T0 + 5000).then((s) => (order.push('b'), s));
    expect(await within(short)).toBeNull();
    expect(Date.now()).toBe(T0);
    await vi.advanceTimersByTimeAsync(1000);
    const slotA = await a;
    expect(slotA).not.toBeNull();
    expect(Date.now()).toBe(T0 + 1000);
    slotA!.ended();
    expect(await within(b, 999)).toBe('pending');
    expect(await within(b, 1)).not.toBeNull();
    expect(order).toEqual(['short', 'a', 'b']);
  });

  it('answers a caller behind one with a later deadline by its own deadline', async () => {
    const budget = new SlidingWindowBudget(1, 1000, clock);
    await budget.acquireSlot(T0 + 10_000); // in flight: when it frees is unknown
    const patient = budget.acquireSlot(T0 + 9000);
    const hurried = budget.acquireSlot(T0 + 1200);
    expect(await within(hurried, 1201)).toBeNull();
    expect(await within(patient, 0)).toBe('pending');
  });

  it('when paced, lets a tenth of the limit go back to back and spaces the rest evenly', async () => {
    const budget = SlidingWindowBudget.paced(100, 1000, clock);
    const grants: number[] = [];
    const all = Array.from({ length: 30 }, () =>
      budget.acquireSlot(T0 + 10_000).then((s) => (grants.push(Date.now()), s!.ended())),
    );
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all(all);
    expect(grants.filter((t) => t === T0)).toHaveLength(10);
    for (let i = 10; i < grants.length; i++) expect(grants[i]! - grants[i - 1]!).toBeGreaterThanOrEqual(9);
    expect(grants[29]! - T0).toBeGreaterThanOrEqual(190);
    expect(grants[29]! - T0).toBeLessThanOrEqual(220);
  });

  it('frees a slot whose call ended at once exactly one window after its end', async () => {
    const budget = new SlidingWindowBudget(1, 1000, clock);
    (await budget.acquireSlot(T0 + 10_000))!.ended();
    const next = budget.acquireSlot(T0 + 10_000);
    expect(await within(next, 999)).toBe('pending');
    expect(await within(next, 1)).not.toBeNull();
  });

  it('reads deadlines (wall-clock times) right when its own steady clock and the wall clock disagree', async () => {
    // The wall clock was stepped back 30 s after start: the steady clock now reads 30 s ahead of Date.now().
    const ahead = new SlidingWindowBudget(1, 1000, () => Date.now() + 30_000);
    (await ahead.acquireSlot(T0 + 10_000))!.ended();
    const patient = ahead.acquireSlot(Date.now() + 5000);
    expect(await within(patient, 999)).toBe('pending'); // not refused: the slot frees in a second, well in time
    expect(await within(patient, 1)).not.toBeNull();

    // Stepped forward (or the machine slept): the steady clock reads 30 s behind. A caller still gets
    // its answer by its own deadline, not 30 s after it.
    const behind = new SlidingWindowBudget(1, 1000, () => Date.now() - 30_000);
    await behind.acquireSlot(Date.now() + 60_000); // in flight, never reported
    const waiting = behind.acquireSlot(Date.now() + 2500);
    expect(await within(waiting, 2501)).toBeNull();
  });

  it('rejects a limit that is not a positive integer', () => {
    expect(() => new SlidingWindowBudget(0)).toThrow(/positive integer, got 0/);
    expect(() => new SlidingWindowBudget(2.5)).toThrow(/positive integer, got 2.5/);
  });

  it('resolves every waiting caller with null on close', async () => {
    const budget = new SlidingWindowBudget(1, 1000, clock);
    await budget.acquireSlot(T0 + 10_000);
    const waiting = budget.acquireSlot(T0 + 10_000);
    await budget.close();
    expect(await within(waiting)).toBeNull();
    expect(await within(budget.acquireSlot(T0 + 10_000))).toBeNull();
  });

  it('never lets more than `limit` calls arrive in any window, whatever their timing and duration', async () => {
    const caller = fc.record({
      gapMs: fc.integer({ min: 0, max: 60 }),
      patienceMs: fc.integer({ min: 0, max: 3000 }),
      /** How long the call takes; null: the caller makes no call with its slot. */
      durationMs: fc.option(fc.integer({ min: 0, max: 400 }), { nil: null }),
      /** The call ends the moment it is granted (the fastest answer there is). */
      endsAtOnce: fc.boolean(),
    });
    const stats = { calls: 0, refused: 0, full: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 12 }),
        fc.boolean(),
        fc.array(caller, { minLength: 1, maxLength: 120 }),
        async (limit, paced, callers) => {
          vi.setSystemTime(T0);
          const budget = paced
            ? SlidingWindowBudget.paced(limit, 1000, clock)
            : new SlidingWindowBudget(limit, 1000, clock);
          const calls: Array<{ grantedAt: number; endedAt: number }> = [];
          const late: string[] = [];
          const outcomes: Array<Promise<void>> = [];
          for (const c of callers) {
            await vi.advanceTimersByTimeAsync(c.gapMs);
            const deadline = Date.now() + c.patienceMs;
            outcomes.push(
              budget.acquireSlot(deadline).then((slot) => {
                const at = Date.now();
                if (at > deadline + 1) late.push(`answered at ${at - deadline} ms past its deadline`);
                if (!slot) return;
                if (c.endsAtOnce) {
                  calls.push({ grantedAt: at, endedAt: at });
                  slot.ended();
                  return;
                }
                if (c.durationMs === null) {
                  slot.unused();
                  return;
                }
                setTimeout(() => {
                  calls.push({ grantedAt: at, endedAt: Date.now() });
                  slot.ended();
                }, c.durationMs);
              }),
            );
          }
          await vi.advanceTimersByTimeAsync(5000);
          await Promise.all(outcomes);
          await vi.advanceTimersByTimeAsync(1000);
          await budget.close();
          expect(late).toEqual([]);
          expect(worstWindow(calls)).toBeLessThanOrEqual(limit);
          stats.calls += calls.length;
          stats.refused += callers.length - calls.length;
          stats.full += worstWindow(calls) === limit ? 1 : 0;
        },
      ),
      { numRuns: 150 },
    );
    // The runs did test something: many calls, many refusals, and often a window filled to the limit.
    expect(stats.calls).toBeGreaterThan(300);
    expect(stats.refused).toBeGreaterThan(50);
    expect(stats.full).toBeGreaterThan(20);
  });
});
