/**
 * The lookup queue of one batched read command (im_get_tag, im_get_attr):
 * lookups from every request wait in one queue of distinct accounts, and leave
 * in calls of up to 100.
 *
 *   lookup -> enqueue -> dispatch -> takeBatch -> send -> settle
 *
 * The dispatcher takes the command's next budget slot and only then cuts a
 * batch from the head of the queue: under light load a lookup leaves at once,
 * and when the budget is the bottleneck the queue grows while the dispatcher
 * waits, so each call leaves full (a database's group commit). Lookups never
 * join a call already sent, so a read queued after a write reads after it.
 *
 * Every lookup is answered by its request's deadline: it leaves in time, or
 * `expire` fails it as RATE_LIMITED (the queue ahead cannot leave in time, or
 * its deadline passed while it waited), or, once sent, it is given up at the
 * deadline whatever the upstream is doing.
 */
import type { Logger } from 'pino';
import type { LookupCommand } from '../tim/commands.js';
import { TimError } from '../tim/errors.js';
import { MAX_ACCOUNTS_PER_CALL } from '../tim/wire.js';
import { MIN_CALL_MS, type AttemptLoop } from './attempt.js';
import type { BudgetSlot } from './budget.js';
import { RateLimitedError } from './errors.js';
import type { RequestTrace } from './trace.js';

/** One account's lookup result: its value, or why there is none to give. */
export type Lookup<V> = V | Error;

/** One call for up to 100 accounts, on the slot given, for the requests traced; never rejects, failures are per account. */
export type FetchBatch<V> = (
  accounts: string[],
  deadline: number,
  slot: BudgetSlot,
  traces: RequestTrace[],
) => Promise<Map<string, Lookup<V>>>;

export interface LookupQueueOptions<V> {
  command: LookupCommand;
  attempts: AttemptLoop;
  fetch: FetchBatch<V>;
  log: Logger;
}

/** One request's interest in one queued account. */
interface Waiter<V> {
  deadline: number;
  trace: RequestTrace;
  /** Taken into a batch that was sent: no longer in the queue. */
  sent: boolean;
  /** Only the first call counts. */
  resolve(result: Lookup<V>): void;
}

type Batch<V> = Map<string, Array<Waiter<V>>>;

export class LookupQueue<V> {
  private readonly queue: Batch<V> = new Map();
  private pumping = false;

  constructor(private readonly opts: LookupQueueOptions<V>) {}

  /** Each distinct account's result; never rejects. */
  lookup(accounts: readonly string[], deadline: number, trace?: RequestTrace): Promise<Map<string, Lookup<V>>> {
    const fresh = accounts.filter((a) => !this.queue.has(a)).length;
    const refusal = this.opts.attempts.refusal(deadline);
    if (refusal || !this.canServeInTime(this.queue.size + fresh, deadline)) {
      const error = refusal ?? new RateLimitedError();
      if (error instanceof RateLimitedError) this.opts.attempts.events.rateLimited?.(accounts.length);
      return Promise.resolve(new Map(accounts.map((a) => [a, error])));
    }
    return this.enqueue(accounts, deadline, trace);
  }

  /** Distinct accounts waiting in the queue for a call. */
  get queuedAccounts(): number {
    return this.queue.size;
  }

  private enqueue(accounts: readonly string[], deadline: number, trace: RequestTrace): Promise<Map<string, Lookup<V>>> {
    const waiters: Array<Waiter<V>> = [];
    const results = accounts.map(
      (account) =>
        new Promise<[string, Lookup<V>]>((resolve) => {
          let settled = false;
          const waiter: Waiter<V> = {
            deadline,
            trace,
            sent: false,
            resolve: (r) => {
              if (settled) return;
              settled = true;
              resolve([account, r]);
            },
          };
          waiters.push(waiter);
          const queued = this.queue.get(account);
          if (queued) queued.push(waiter);
          else this.queue.set(account, [waiter]);
        }),
    );
    this.pump();
    // The backstop: whatever the dispatcher and the upstream do, the request has its answer by its deadline.
    const backstop = setTimeout(() => this.giveUp(accounts, waiters), Math.max(0, deadline - Date.now()));
    return Promise.all(results).then((entries) => {
      clearTimeout(backstop);
      return new Map(entries);
    });
  }

  /**
   * Whether `queued` accounts can all leave before `deadline` at the budget's
   * steady pace; when not, the lookup fails at once instead of growing the
   * queue. This bounds the queue to what the budget can send before the
   * latest deadline: about `limit` x 100 accounts per second of request time.
   */
  private canServeInTime(queued: number, deadline: number): boolean {
    const callsAhead = Math.ceil(queued / MAX_ACCOUNTS_PER_CALL);
    const limit = this.opts.attempts.limitOf(this.opts.command);
    const msNeeded = ((callsAhead - 1) * 1000) / limit;
    return Date.now() + msNeeded + MIN_CALL_MS < deadline;
  }

  /** Answers a request's lookups still open at its deadline: still queued, they expire; sent, the upstream was too slow. */
  private giveUp(accounts: readonly string[], waiters: Array<Waiter<V>>): void {
    const queued: Array<Waiter<V>> = [];
    waiters.forEach((waiter, i) => {
      if (waiter.sent) {
        waiter.resolve(TimError.unavailable('no answer from TIM before the request deadline'));
        return;
      }
      queued.push(waiter);
      this.forget(accounts[i]!, waiter);
    });
    this.expire(queued);
  }

  /** Takes a waiter that gave up out of the queue, so memory goes with it. */
  private forget(account: string, waiter: Waiter<V>): void {
    const queued = this.queue.get(account);
    if (!queued) return;
    const rest = queued.filter((w) => w !== waiter);
    if (rest.length === 0) this.queue.delete(account);
    else if (rest.length !== queued.length) this.queue.set(account, rest);
  }

  /** Runs the dispatcher unless it runs already; it stops when the queue is empty. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    // setImmediate, not a microtask: lookups of every request that arrived in
    // this turn of the event loop join the first batch.
    setImmediate(() => void this.dispatch());
  }

  /**
   * The dispatcher: one slot, then one batch, until the queue is empty. It
   * asks the budget for a slot by the head's earliest deadline; when none can
   * be had by then, no lookup due by then can be served, so those expire and
   * the rest of the queue keeps its place.
   */
  private async dispatch(): Promise<void> {
    try {
      for (let due = this.headDeadline(); due !== null; due = this.headDeadline()) {
        const slot = await this.opts.attempts.slotFor(this.opts.command, due);
        if (!slot) {
          this.expireDueBy(due);
          continue;
        }
        const batch = this.takeBatch();
        if (batch.size === 0) {
          slot.unused();
          continue;
        }
        void this.send(batch, slot);
      }
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'upstream dispatcher failed');
      this.settle(this.takeBatch(Infinity), new Map(), TimError.unavailable('upstream dispatcher failed'));
    } finally {
      this.pumping = false;
      if (this.queue.size > 0) this.pump();
    }
  }

  /** The earliest deadline of the head account's lookups, expiring those already past it; null when the queue is empty. */
  private headDeadline(): number | null {
    for (const [account, waiters] of this.queue) {
      const live = this.liveOf(waiters);
      if (live.length === 0) {
        this.queue.delete(account);
        continue;
      }
      if (live.length !== waiters.length) this.queue.set(account, live);
      return live.reduce((due, w) => Math.min(due, w.deadline), Infinity);
    }
    return null;
  }

  /** Expires every queued lookup due by `due`: the budget has no slot for it in time. */
  private expireDueBy(due: number): void {
    const late: Array<Waiter<V>> = [];
    for (const [account, waiters] of this.queue) {
      const rest = waiters.filter((w) => w.deadline > due || (late.push(w), false));
      if (rest.length === 0) this.queue.delete(account);
      else if (rest.length !== waiters.length) this.queue.set(account, rest);
    }
    this.expire(late);
  }

  /** Cuts up to `size` accounts that still have a live lookup from the head of the queue. */
  private takeBatch(size = MAX_ACCOUNTS_PER_CALL): Batch<V> {
    const batch: Batch<V> = new Map();
    for (const [account, waiters] of this.queue) {
      if (batch.size >= size) break;
      this.queue.delete(account);
      const live = this.liveOf(waiters);
      if (live.length === 0) continue;
      for (const w of live) w.sent = true;
      batch.set(account, live);
    }
    return batch;
  }

  /** The lookups whose requests still have time; the others expire. */
  private liveOf(waiters: Array<Waiter<V>>): Array<Waiter<V>> {
    const now = Date.now();
    const late: Array<Waiter<V>> = [];
    const live = waiters.filter((w) => w.deadline > now || (late.push(w), false));
    this.expire(late);
    return live;
  }

  /** The one place a lookup fails for want of a slot in time: RATE_LIMITED. */
  private expire(waiters: ReadonlyArray<Waiter<V>>): void {
    if (waiters.length === 0) return;
    const error = new RateLimitedError();
    for (const w of waiters) w.resolve(error);
    this.opts.attempts.events.rateLimited?.(waiters.length);
  }

  private async send(batch: Batch<V>, slot: BudgetSlot): Promise<void> {
    const accounts = [...batch.keys()];
    let deadline = 0;
    const traces: RequestTrace[] = [];
    for (const waiters of batch.values())
      for (const w of waiters) {
        deadline = Math.max(deadline, w.deadline);
        if (w.trace) traces.push(w.trace);
      }
    let results: Map<string, Lookup<V>>;
    try {
      results = await this.opts.fetch(accounts, deadline, slot, traces);
    } catch (err) {
      // fetch does not reject; this only keeps a bug from leaving requests without an answer.
      this.opts.log.error({ err: String(err) }, 'upstream lookup failed');
      results = new Map();
    }
    this.settle(batch, results, TimError.unavailable('upstream lookup failed'));
  }

  /** Answers every waiter of a batch with its account's result (`missing` for an account with none). */
  private settle(batch: Batch<V>, results: ReadonlyMap<string, Lookup<V>>, missing: Error): void {
    for (const [account, waiters] of batch) {
      const r = results.get(account) ?? missing;
      for (const w of waiters) w.resolve(r);
    }
  }
}
