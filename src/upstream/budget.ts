/**
 * The rate budget: at most `limit` upstream calls in any sliding window.
 *
 * A counter that resets each second, or a token bucket with a full-second
 * burst, lets twice the limit through across a boundary, so this keeps a log of
 * the times it has granted and grants the next call only when the call `limit`
 * places back has left the window. The window is a little longer than a second
 * so that network jitter cannot bunch arrivals at the upstream.
 */

export interface RateBudget {
  /**
   * Waits for the right to make one call and resolves `true` at that moment,
   * or resolves `false` at once when no slot can be had before `deadline`
   * (epoch ms): the caller then fails fast instead of queueing forever.
   */
  acquire(deadline: number): Promise<boolean>;
  /** Calls per second this budget grants now (it may fall back to a local share). */
  readonly limit: number;
  /** Where the budget is kept, for /readyz and the logs. */
  describe(): string;
  close?(): Promise<void>;
}

export const WINDOW_MS = 1000;
/** Added to the window: arrivals at the upstream spread by up to this much more than departures do. */
export const WINDOW_MARGIN_MS = 30;

export class SlidingWindowBudget implements RateBudget {
  /** Granted (or reserved, for waiting callers) call times, ascending; at most `limit` kept. */
  private readonly granted: number[] = [];

  constructor(
    readonly limit: number,
    private readonly windowMs = WINDOW_MS + WINDOW_MARGIN_MS,
    private readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`budget limit must be a positive integer, got ${limit}`);
  }

  acquire(deadline: number): Promise<boolean> {
    const slot = this.reserve(deadline);
    if (slot === null) return Promise.resolve(false);
    const wait = slot - this.now();
    if (wait <= 0) return Promise.resolve(true);
    return new Promise((resolve) => setTimeout(() => resolve(true), wait));
  }

  /** The earliest time a call may start, recorded as taken; null when later than `deadline`. */
  reserve(deadline: number): number | null {
    const now = this.now();
    // Reservations only grow, so the log stays sorted and its head is the oldest.
    const oldest = this.granted.length < this.limit ? -Infinity : this.granted[this.granted.length - this.limit]!;
    const last = this.granted[this.granted.length - 1] ?? -Infinity;
    const slot = Math.max(now, oldest + this.windowMs, last);
    if (slot > deadline) return null;
    this.granted.push(slot);
    if (this.granted.length > this.limit) this.granted.splice(0, this.granted.length - this.limit);
    return slot;
  }

  /** Calls already granted or reserved that still count against the window at `now`. */
  inWindow(): number {
    const from = this.now() - this.windowMs;
    return this.granted.filter((t) => t > from).length;
  }

  describe(): string {
    return `local (${this.limit} calls per second)`;
  }
}
