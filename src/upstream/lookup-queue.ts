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
 *
 * Near the budget's limit the queue paces itself. Once its calls over the
 * last second reach nine tenths of its budget (of this process's share of it
 * where a fleet shares one: TIM_MAX_QPS / GATEWAY_REPLICAS), a call that
 * would not be full waits until one pace interval (a second over that) after
 * the call before it was due, gathering the lookups that come meanwhile; a full one
 * goes as soon as it has its slot. Without this, the budget's burst
 * allowance and the way slots free (a window after each call ends, in the
 * pattern the calls ended in) let calls leave in clumps: a call of 100 and,
 * a millisecond later, one of the 9 left over, then a long wait. The budget
 * was spent on small calls and every lookup waited longer. Below that
 * nothing waits: while slots are plentiful, waiting would only add latency.
 */
import type { Logger } from 'pino';
import type { LookupCommand } from '../tim/commands.js';
import { TimError } from '../tim/errors.js';
import { MAX_ACCOUNTS_PER_CALL } from '../tim/wire.js';
import { MIN_CALL_MS, type AttemptLoop } from './attempt.js';
import { WINDOW_MS, type BudgetSlot } from './budget.js';
import { RateLimitedError } from './errors.js';
import type { RequestTrace } from './trace.js';
import { wakeableSleep } from './wakeable-sleep.js';

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

/**
 * One request's lookups in the queue: one promise and one backstop timer for
 * all its accounts, answered into one Map. Its accounts wait in the queue by
 * reference to it; an account not in `results` and no longer queued under it
 * was sent. Per-request facts (the deadline; more may follow) live here.
 */
interface Ticket<V> {
  readonly deadline: number;
  /** The request's span context, for the spans of the calls that serve it (tracing off: undefined). */
  readonly trace: RequestTrace;
  readonly accounts: readonly string[];
  readonly results: Map<string, Lookup<V>>;
  /** Accounts still without a result. */
  open: number;
  backstop: ReturnType<typeof setTimeout> | undefined;
  done(results: Map<string, Lookup<V>>): void;
}

/** Accounts and the tickets waiting for each. */
type Batch<V> = Map<string, Array<Ticket<V>>>;

/** One account of one request that is out of time. */
type Late<V> = readonly [Ticket<V>, string];

/** The part of its share the queue's calls of the last second must reach before calls that are not full are paced. */
const PACED_FROM = 0.9;

export class LookupQueue<V> {
  private readonly queue: Batch<V> = new Map();
  private pumping = false;
  /** When this queue's calls of the last window left (Date.now), oldest first. */
  private readonly sentAt: number[] = [];
  /**
   * When the next paced call is due (Date.now): one pace interval after the last was due, not after
   * it left. A linger that ends late (a busy event loop: the timer fires a millisecond or two after
   * its time) would otherwise stretch every interval after it, and a loaded gateway's calls fall
   * short of its share for no reason the budget has. It never lags a call's departure by more than
   * one interval, so after a pause the calls do not rush to catch up.
   */
  private paceAt = -Infinity;
  /** Ends the dispatcher's wait for a fuller call early (the queue filled a call); null when it does not wait. */
  private stopLingering: (() => void) | null = null;

  constructor(private readonly opts: LookupQueueOptions<V>) {}

  /** Each distinct account's result (an account named twice is answered once); never rejects. */
  lookup(accounts: readonly string[], deadline: number, trace?: RequestTrace): Promise<Map<string, Lookup<V>>> {
    let fresh = 0;
    for (const a of accounts) if (!this.queue.has(a)) fresh++;
    const refusal = this.opts.attempts.refusal(deadline);
    if (refusal || !this.canServeInTime(this.queue.size + fresh, deadline)) {
      const error = refusal ?? new RateLimitedError();
      if (error instanceof RateLimitedError) this.opts.attempts.events.rateLimited?.(accounts.length);
      const out = new Map<string, Lookup<V>>();
      for (const a of accounts) out.set(a, error);
      return Promise.resolve(out);
    }
    return this.enqueue(accounts, deadline, trace);
  }

  /** Distinct accounts waiting in the queue for a call. */
  get queuedAccounts(): number {
    return this.queue.size;
  }

  private enqueue(accounts: readonly string[], deadline: number, trace: RequestTrace): Promise<Map<string, Lookup<V>>> {
    return new Promise((done) => {
      const ticket: Ticket<V> = {
        deadline,
        trace,
        accounts,
        results: new Map(),
        open: accounts.length,
        backstop: undefined,
        done,
      };
      if (accounts.length === 0) return done(ticket.results);
      for (const account of accounts) {
        const queued = this.queue.get(account);
        if (!queued) this.queue.set(account, [ticket]);
        else if (queued[queued.length - 1] === ticket)
          ticket.open--; // named twice: answered once
        else queued.push(ticket);
      }
      if (this.queue.size >= MAX_ACCOUNTS_PER_CALL) this.stopLingering?.();
      this.pump();
      // The backstop: whatever the dispatcher and the upstream do, the request has its answer by its deadline.
      ticket.backstop = setTimeout(this.giveUp, Math.max(0, deadline - Date.now()), ticket);
    });
  }

  /** Gives one of a ticket's accounts its result; only the first counts. The last one answers the request. */
  private answer(ticket: Ticket<V>, account: string, result: Lookup<V>): void {
    if (ticket.results.has(account)) return;
    ticket.results.set(account, result);
    if (--ticket.open > 0) return;
    clearTimeout(ticket.backstop);
    ticket.done(ticket.results);
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
  private readonly giveUp = (ticket: Ticket<V>): void => {
    const queued: Array<Late<V>> = [];
    for (const account of ticket.accounts) {
      if (ticket.results.has(account)) continue;
      if (this.forget(account, ticket)) queued.push([ticket, account]);
      else this.answer(ticket, account, TimError.unavailable('no answer from TIM before the request deadline'));
    }
    this.expire(queued);
  };

  /** Takes a ticket that gave up out of an account's queue entry, so memory goes with it; false when it was sent already. */
  private forget(account: string, ticket: Ticket<V>): boolean {
    const queued = this.queue.get(account);
    const i = queued ? queued.indexOf(ticket) : -1;
    if (i < 0) return false;
    if (queued!.length === 1) this.queue.delete(account);
    else queued!.splice(i, 1);
    return true;
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
        const until = this.pacedUntil(due);
        if (until !== null) {
          await this.linger(until);
          continue;
        }
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
        const now = Date.now();
        this.sentAt.push(now);
        const interval = WINDOW_MS / this.opts.attempts.shareOf(this.opts.command);
        this.paceAt = Math.max(this.paceAt, now - interval) + interval;
        void this.send(batch, slot);
      }
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'upstream dispatcher failed');
      this.settle(this.takeBatch(Infinity), new Map(), () => TimError.unavailable('upstream dispatcher failed'));
    } finally {
      this.pumping = false;
      if (this.queue.size > 0) this.pump();
    }
  }

  /**
   * When the next call may leave, if it must wait for its pace (see the top of this file): null when
   * it may go now. It never waits past the moment its head lookup needs a slot by.
   */
  private pacedUntil(due: number): number | null {
    if (this.queue.size >= MAX_ACCOUNTS_PER_CALL) return null;
    const now = Date.now();
    const { sentAt } = this;
    while (sentAt.length > 0 && sentAt[0]! <= now - WINDOW_MS) sentAt.shift();
    const share = this.opts.attempts.shareOf(this.opts.command);
    if (sentAt.length === 0 || sentAt.length < share * PACED_FROM) return null;
    const until = Math.min(this.paceAt, due - MIN_CALL_MS);
    return until > now ? until : null;
  }

  /** Waits until `until`, or until the queue holds a full call. */
  private linger(until: number): Promise<void> {
    return wakeableSleep(until - Date.now(), (stop) => (this.stopLingering = stop));
  }

  /** The earliest deadline of the head account's lookups, expiring those already past it; null when the queue is empty. */
  private headDeadline(): number | null {
    const now = Date.now();
    for (const [account, tickets] of this.queue) {
      const live = this.liveOf(account, tickets, now);
      if (live.length === 0) {
        this.queue.delete(account);
        continue;
      }
      if (live !== tickets) this.queue.set(account, live);
      let due = Infinity;
      for (const t of live) if (t.deadline < due) due = t.deadline;
      return due;
    }
    return null;
  }

  /** Expires every queued lookup due by `due`: the budget has no slot for it in time. */
  private expireDueBy(due: number): void {
    for (const [account, tickets] of this.queue) {
      const rest = this.liveOf(account, tickets, due);
      if (rest.length === 0) this.queue.delete(account);
      else if (rest !== tickets) this.queue.set(account, rest);
    }
  }

  /**
   * Cuts up to `size` accounts that still have a live lookup from the head of
   * the queue: one clock reading for the batch, late lookups expired as it goes.
   */
  private takeBatch(size = MAX_ACCOUNTS_PER_CALL): Batch<V> {
    const now = Date.now();
    const batch: Batch<V> = new Map();
    for (const [account, tickets] of this.queue) {
      if (batch.size >= size) break;
      this.queue.delete(account);
      const live = this.liveOf(account, tickets, now);
      if (live.length > 0) batch.set(account, live);
    }
    return batch;
  }

  /**
   * The tickets due after `now`; the others expire for this account. The same
   * array when every one is live (the usual case: nothing is allocated).
   */
  private liveOf(account: string, tickets: Array<Ticket<V>>, now: number): Array<Ticket<V>> {
    let late = 0;
    for (const t of tickets) if (t.deadline <= now) late++;
    if (late === 0) return tickets;
    const live: Array<Ticket<V>> = [];
    const expired: Array<Late<V>> = [];
    for (const t of tickets) {
      if (t.deadline > now) live.push(t);
      else expired.push([t, account]);
    }
    this.expire(expired);
    return live;
  }

  /** The one place a lookup fails for want of a slot in time: RATE_LIMITED. */
  private expire(lookups: ReadonlyArray<Late<V>>): void {
    if (lookups.length === 0) return;
    const error = new RateLimitedError();
    for (const [ticket, account] of lookups) this.answer(ticket, account, error);
    this.opts.attempts.events.rateLimited?.(lookups.length);
  }

  private async send(batch: Batch<V>, slot: BudgetSlot): Promise<void> {
    const accounts: string[] = [];
    let deadline = 0;
    const traces: RequestTrace[] = [];
    // forEach, not for-of: no entry pair and iterator result made per account.
    batch.forEach((tickets, account) => {
      accounts.push(account);
      for (const t of tickets) {
        if (t.deadline > deadline) deadline = t.deadline;
        if (t.trace) traces.push(t.trace);
      }
    });
    let results: Map<string, Lookup<V>>;
    try {
      results = await this.opts.fetch(accounts, deadline, slot, traces);
    } catch (err) {
      // fetch does not reject; this only keeps a bug from leaving requests without an answer.
      this.opts.log.error({ err: String(err) }, 'upstream lookup failed');
      results = new Map();
    }
    this.settle(batch, results, () => TimError.unavailable('upstream lookup failed'));
  }

  /**
   * Answers every ticket of a batch with its account's result, or with the error `missing` makes for an
   * account with none (made once, and only then: an error's stack trace is the dearest thing here).
   */
  private settle(batch: Batch<V>, results: ReadonlyMap<string, Lookup<V>>, missing: () => Error): void {
    let error: Error | undefined;
    batch.forEach((tickets, account) => {
      const r = results.get(account) ?? (error ??= missing());
      for (const t of tickets) this.answer(t, account, r);
    });
  }
}
