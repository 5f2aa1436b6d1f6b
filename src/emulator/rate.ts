/**
 * The service's call-rate rule and the matching measure for tests and benchmarks.
 *
 * Both use the same window: a call at `t` shares a window with an earlier call at `a` when
 * `t < a + windowMs`. So a run of calls got no 60007 exactly when maxCallsInWindow over its
 * recorded calls of each command stays within the limit.
 */
import type { RecordedCall } from './types.js';

/** Arrival times of one command, oldest first; `head` skips those that left the window. */
interface Arrivals {
  times: number[];
  head: number;
}

export class SlidingWindowLimiter {
  private readonly arrivals = new Map<string, Arrivals>();

  constructor(
    readonly maxCalls: number,
    private readonly windowMs = 1000,
  ) {}

  /**
   * Whether a call of `key` arriving at `at` (ms) is within the limit; if so it is counted.
   * A call refused here is not: it is turned away at the door, so a client that backs off
   * for a moment gets through again instead of being locked out while it retries.
   */
  admit(key: string, at: number): boolean {
    let a = this.arrivals.get(key);
    if (!a) this.arrivals.set(key, (a = { times: [], head: 0 }));
    const leftBefore = at - this.windowMs;
    while (a.head < a.times.length && a.times[a.head]! <= leftBefore) a.head++;
    // Drop the departed prefix now and then, so the array stays about one window long.
    if (a.head > 1024 && a.head * 2 > a.times.length) {
      a.times = a.times.slice(a.head);
      a.head = 0;
    }
    if (a.times.length - a.head >= this.maxCalls) return false;
    a.times.push(at);
    return true;
  }
}

/**
 * The most calls (optionally only of `command`) whose `at` falls in any window
 * `[calls[i].at, calls[i].at + windowMs)`.
 */
export function maxCallsInWindow(calls: readonly RecordedCall[], windowMs = 1000, command?: string): number {
  return mostInWindow(
    calls.filter((c) => command === undefined || c.command === command).map((c) => c.at),
    windowMs,
  );
}

/** The most of `times` (ms) that fall in any window [t, t + windowMs). */
export function mostInWindow(times: readonly number[], windowMs = 1000): number {
  times = [...times].sort((x, y) => x - y);
  let most = 0;
  let end = 0;
  for (let start = 0; start < times.length; start++) {
    while (end < times.length && times[end]! < times[start]! + windowMs) end++;
    most = Math.max(most, end - start);
  }
  return most;
}
