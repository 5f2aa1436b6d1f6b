/**
 * The rate budget: at most `limit` upstream calls in any sliding window, as
 * the upstream counts them: by arrival.
 *
 * A counter that resets each second, or a token bucket with a full-second
 * burst, lets twice the limit through across a boundary. A log of grant times
 * is not enough either: a call granted early can arrive late (a busy event
 * loop, a new connection) and bunch up with calls granted a window later. So a
 * call holds its slot from its grant until one window after it ended (its
 * answer came back, or it was given up), and a call is granted only while
 * fewer than `limit` calls hold one. A call arrives between its grant and its
 * end, so if `limit + 1` arrivals fell in one window, the last of them to be
 * granted would have found the other `limit` still holding their slots: no
 * network delay, however uneven, can break the limit.
 *
 * A paced budget (`SlidingWindowBudget.paced`) also spaces the calls: up to
 * `burst` back to back, then one per `window / limit`. Under light load a call
 * leaves at once; under load the budget is spent evenly instead of in one burst
 * and then a second of silence, so a caller that batches (a lookup queue) fills
 * its calls up while it waits a few milliseconds, not a whole second.
 */

/** The right to make one call, held until the call is over. */
export interface BudgetSlot {
  /** The call has its answer, or was given up: the slot frees one window from now. Only the first report counts. */
  ended(): void;
  /** No call was made: the slot frees at once. */
  unused(): void;
}

export interface RateBudget {
  /**
   * Waits for the right to make one call and resolves with its slot at that
   * moment, or with null once no slot can be had before `deadline` (epoch ms),
   * at once when that is plain from the start: the caller then fails fast
   * instead of queueing forever. The caller reports when the call ended, so
   * the budget need not assume how long it takes to arrive.
   */
  acquireSlot(deadline: number): Promise<BudgetSlot | null>;
  /** Calls per second this budget grants now (it may fall back to a local share). */
  readonly limit: number;
  /**
   * Calls per second this process can count on as its own: where a fleet shares the limit, its share
   * (TIM_MAX_QPS / GATEWAY_REPLICAS); absent, the whole limit. The lookup queue paces itself by it.
   */
  readonly share?: number;
  /** Where the budget is kept, for /readyz and the logs. */
  describe(): string;
  close?(): Promise<void>;
}

export const WINDOW_MS = 1000;
/** Added to the window after a reported end: only clock rounding needs room then. Shared with the Redis budget. */
export const CLOCK_MARGIN_MS = 5;

/** Epoch milliseconds with sub-millisecond precision, steady between clock adjustments. */
const preciseNow = (): number => performance.timeOrigin + performance.now();

interface WaitingCaller {
  /** On the budget's own clock (`now`). */
  deadline: number;
  resolve(slot: HeldSlot | null): void;
}

export class SlidingWindowBudget implements RateBudget {
  private readonly intervalMs: number;
  /** Granted calls that have not ended yet. */
  private inFlight = 0;
  /** When each ended call's slot frees (its end plus the window), ascending. */
  private frees: number[] = [];
  /** The pacing clock (GCRA's theoretical arrival time): the next call is due then, less the burst allowance. */
  private paceAt = -Infinity;
  /** Callers waiting for a slot, first come first served. */
  private waiting: WaitingCaller[] = [];
  private timer: NodeJS.Timeout | null = null;
  private serving = false;
  private serveAgain = false;
  private closed = false;

  /** A budget that spends itself evenly: a tenth of the limit back to back, then one call per `window / limit`. */
  static paced(limit: number, windowMs?: number, now?: () => number): SlidingWindowBudget {
    return new SlidingWindowBudget(limit, windowMs, now, Math.ceil(limit / 10));
  }

  constructor(
    readonly limit: number,
    private readonly windowMs = WINDOW_MS + CLOCK_MARGIN_MS,
    private readonly now: () => number = preciseNow,
    /** Calls that may go back to back before pacing starts; `limit` (the default) means no pacing. */
    readonly burst = limit,
  ) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`budget limit must be a positive integer, got ${limit}`);
    if (!(windowMs > 0)) throw new RangeError(`budget window must be positive, got ${windowMs} ms`);
    if (!Number.isInteger(burst) || burst < 1)
      throw new RangeError(`budget burst must be a positive integer, got ${burst}`);
    this.intervalMs = windowMs / limit;
  }

  acquireSlot(deadline: number): Promise<BudgetSlot | null> {
    return this.take(deadline);
  }

  /** Calls that hold a slot now: in flight, or ended less than a window ago. */
  held(): number {
    this.dropFreed(this.now());
    return this.inFlight + this.frees.length;
  }

  describe(): string {
    return `local (${this.limit} calls per second)`;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopTimer();
    for (const w of this.waiting.splice(0)) w.resolve(null);
  }

  private take(wallDeadline: number): Promise<HeldSlot | null> {
    if (this.closed) return Promise.resolve(null);
    // Callers give wall-clock (Date.now) deadlines; this budget keeps time on its own steady clock, which
    // a step of the wall clock does not move. Compared as they come, a step of a few seconds would
    // refuse every caller that must wait (or keep them that much past their deadlines) for good.
    const deadline = this.now() + (wallDeadline - Date.now());
    if (this.waiting.length === 0) {
      const slot = this.grant();
      if (slot) return Promise.resolve(slot);
    }
    if (this.earliestGrant(this.waiting.length) > deadline) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiting.push({ deadline, resolve });
      this.serveWaiting();
    });
  }

  /** A slot now, if both rules allow one; null otherwise. */
  private grant(): HeldSlot | null {
    const now = this.now();
    this.dropFreed(now);
    if (this.inFlight + this.frees.length >= this.limit) return null;
    if (now < this.paceAt - (this.burst - 1) * this.intervalMs) return null;
    this.paceAt = Math.max(this.paceAt, now) + this.intervalMs;
    this.inFlight++;
    return new HeldSlot(this.now, (endedAt) => {
      this.inFlight--;
      if (endedAt !== null) insertSorted(this.frees, endedAt + this.windowMs);
      this.serveWaiting();
    });
  }

  /**
   * Grants slots to waiting callers in order, refuses those that can no longer
   * be served before their deadline, and sets a timer for the next chance.
   * Slots ending while it runs only ask it to run once more.
   */
  private serveWaiting(): void {
    if (this.serving) {
      this.serveAgain = true;
      return;
    }
    this.serving = true;
    try {
      do {
        this.serveAgain = false;
        this.serveOnce();
      } while (this.serveAgain);
    } finally {
      this.serving = false;
    }
  }

  private serveOnce(): void {
    this.stopTimer();
    if (this.closed) return;
    while (this.waiting.length > 0) {
      const slot = this.grant();
      if (!slot) break;
      this.waiting.shift()!.resolve(slot);
    }
    if (this.waiting.length === 0) return;
    const stillWaiting: WaitingCaller[] = [];
    let wakeAt = this.nextChance(this.now());
    for (const w of this.waiting) {
      if (this.earliestGrant(stillWaiting.length) > w.deadline) {
        w.resolve(null);
      } else {
        stillWaiting.push(w);
        wakeAt = Math.min(wakeAt, w.deadline + 1);
      }
    }
    this.waiting = stillWaiting;
    // With every slot held by a call in flight, the next chance comes when one ends, which runs this again.
    if (stillWaiting.length === 0 || wakeAt === Infinity) return;
    this.timer = setTimeout(() => this.serveWaiting(), Math.max(1, Math.ceil(wakeAt - this.now())));
  }

  /** When `grant` may next succeed; Infinity when that waits for a call in flight to end. */
  private nextChance(now: number): number {
    let at = Math.max(now, this.paceAt - (this.burst - 1) * this.intervalMs);
    const held = this.inFlight + this.frees.length;
    if (held >= this.limit) {
      const first = held - this.limit; // the slot in `frees` that must free before any other call goes
      at = Math.max(at, first < this.frees.length ? this.frees[first]! : Infinity);
    }
    return at;
  }

  /**
   * The earliest the caller with `ahead` callers before it could be granted,
   * by both rules; never later than the truth, so a refusal is always right.
   */
  private earliestGrant(ahead: number): number {
    const now = this.now();
    this.dropFreed(now);
    const paced = Math.max(now, Math.max(this.paceAt, now) + (ahead - (this.burst - 1)) * this.intervalMs);
    const free = this.limit - this.inFlight - this.frees.length;
    if (ahead < free) return paced;
    const needed = ahead - free;
    // A slot in flight frees a window after its call ends, so a window from now at the soonest;
    // each further round of `limit` grants waits for the round before it.
    const freed =
      needed < this.frees.length
        ? this.frees[needed]!
        : now + this.windowMs * (1 + Math.floor((needed - this.frees.length) / this.limit));
    return Math.max(paced, freed);
  }

  private dropFreed(now: number): void {
    let n = 0;
    while (n < this.frees.length && this.frees[n]! <= now) n++;
    if (n > 0) this.frees.splice(0, n);
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

/** One granted call's slot; only the first report of its end counts. */
class HeldSlot implements BudgetSlot {
  private over = false;

  constructor(
    private readonly now: () => number,
    private readonly release: (endedAt: number | null) => void,
  ) {}

  ended(): void {
    this.finish(this.now());
  }

  unused(): void {
    this.finish(null);
  }

  private finish(endedAt: number | null): void {
    if (this.over) return;
    this.over = true;
    this.release(endedAt);
  }
}

function insertSorted(sorted: number[], value: number): void {
  let i = sorted.length;
  while (i > 0 && sorted[i - 1]! > value) i--;
  sorted.splice(i, 0, value);
}
