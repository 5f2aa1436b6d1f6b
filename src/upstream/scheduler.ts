/**
 * The upstream scheduler: every TIM call of the gateway passes through here.
 *
 * Lookups from every request wait in one queue of distinct accounts. The
 * dispatcher takes the budget's next slot and only then cuts a batch of up to
 * 100 accounts from the head of the queue: under light load a lookup leaves at
 * once, and when the budget is the bottleneck the queue grows while the
 * dispatcher waits, so each call leaves full (a database's group commit).
 * Lookups never join a call already sent, so a read queued after a write
 * always reads after it.
 *
 * Every lookup is answered by its request's deadline: it leaves in time, or
 * fails fast when the queue ahead of it cannot leave in time (RATE_LIMITED),
 * or is given up at the deadline, whatever the upstream is doing.
 */
import type { SpanContext } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { TimClient } from '../tim/client.js';
import { TimError } from '../tim/errors.js';
import { planAccountCalls, readErrorList, readGetTagAnswer, type AccountTags } from '../tim/tags.js';
import {
  MAX_ACCOUNTS_PER_CALL,
  TimCode,
  type CommonAnswer,
  type GetTagAnswer,
  type TagCommand,
  type UserTags,
} from '../tim/wire.js';
import type { BudgetSlot, RateBudget } from './budget.js';
import type { TagCache } from './cache.js';
import { Circuit } from './circuit.js';
import { RateLimitedError } from './errors.js';
import { DEFAULT_RETRY, nextStep, type RetryPolicy } from './retry.js';
import { NO_TRACE, type UpstreamTracer } from './trace.js';

/** One account's lookup result: its tags, or why there are none to give. */
export type TagResult = string[] | Error;

/** Hooks for metrics; every one optional. */
export interface SchedulerEvents {
  budgetWait?(ms: number): void;
  rateLimited?(accounts: number): void;
  retry?(command: TagCommand, code: number): void;
  cache?(hits: number, misses: number): void;
}

export interface SchedulerOptions {
  client: TimClient;
  budget: RateBudget;
  log: Logger;
  cache?: TagCache;
  /** Off: each request's batches are sent as they are (the per-request DataLoader baseline, for the bench). */
  coalesce?: boolean;
  retry?: RetryPolicy;
  circuit?: Circuit;
  events?: SchedulerEvents;
  /** A span per call attempt (tracing off: none). */
  tracer?: UpstreamTracer;
}

/** The trace a lookup or write belongs to: its GraphQL operation's span, when tracing is on. */
export type RequestTrace = SpanContext | undefined;

/** What the spans of one logical call need: the operations it serves, and the first slot's wait. */
interface CallTrace {
  requests: SpanContext[];
  firstWaitMs: number;
}

/** One write call: what was sent and, when it failed, why. */
export interface WriteOutcome {
  accounts: string[];
  error?: Error;
  /** Accounts the upstream refused one by one (`ErrorList`), with their own errors. */
  accountErrors: Map<string, Error>;
}

/** One request's interest in one queued account. */
interface Waiter {
  deadline: number;
  trace: RequestTrace;
  /** Taken into a batch that was sent: no longer in the queue. */
  sent: boolean;
  /** Only the first call counts. */
  resolve(result: AccountTags | { error: Error }): void;
}

/** Upstream codes that say the upstream is broken, as opposed to busy (60007, 60011) or refusing this call. */
const OUTAGE_CODES = new Set<number>([TimCode.INTERNAL_RETRY, TimCode.INTERNAL_TIMEOUT, TimCode.INTERNAL_ERROR]);

/**
 * Time a call needs before its deadline to be worth making: a slot that would
 * come later than this is not taken, and the lookup fails as rate limited
 * rather than as a call cut short.
 */
const MIN_CALL_MS = 200;

export class UpstreamScheduler {
  readonly circuit: Circuit;
  private readonly queue = new Map<string, Waiter[]>();
  private pumping = false;
  private readonly retry: RetryPolicy;
  private readonly events: SchedulerEvents;
  private readonly tracer: UpstreamTracer;

  constructor(private readonly opts: SchedulerOptions) {
    this.circuit = opts.circuit ?? new Circuit();
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.events = opts.events ?? {};
    this.tracer = opts.tracer ?? NO_TRACE;
  }

  /** Tags of each account, in the order given; never rejects, failures are per account. */
  async getTags(accounts: readonly string[], deadline: number, trace?: RequestTrace): Promise<TagResult[]> {
    const cached = await this.fromCache(accounts);
    const misses = [...new Set(accounts.filter((a) => !cached.has(a)))];
    const fetched = new Map<string, TagResult>();
    if (misses.length > 0) {
      const lookups =
        this.refusal(misses, deadline) ??
        (this.opts.coalesce === false
          ? this.lookupDirect(misses, deadline, trace)
          : this.enqueue(misses, deadline, trace));
      for (const [account, result] of await lookups) fetched.set(account, result);
    }
    return accounts.map((a) => cached.get(a) ?? fetched.get(a) ?? new Error(`no answer for account ${a}`));
  }

  /**
   * Sends a write, split by the caller into calls that fit the upstream, one
   * call after another, and says what became of each. Cached tags of every
   * account named are dropped before the first call and after the last.
   */
  async write(
    command: Exclude<TagCommand, 'im_get_tag'>,
    calls: Array<UserTags[] | string[]>,
    deadline: number,
    trace?: RequestTrace,
  ): Promise<WriteOutcome[]> {
    const touched = calls.flatMap(accountsOf);
    await this.opts.cache?.invalidate(touched);
    const outcomes: WriteOutcome[] = [];
    try {
      for (const call of calls) {
        const body = typeof call[0] === 'string' ? { To_Account: call } : { UserTags: call };
        const accounts = accountsOf(call);
        try {
          const answer = await this.send<CommonAnswer>(command, body, accounts.length, deadline, traceOf([trace]));
          outcomes.push({ accounts, accountErrors: readErrorList(answer) });
        } catch (error) {
          outcomes.push({ accounts, error: error as Error, accountErrors: new Map() });
        }
      }
    } finally {
      await this.opts.cache?.invalidate(touched);
    }
    return outcomes;
  }

  /** Whether the upstream is thought usable (for /readyz). */
  get ready(): boolean {
    return this.circuit.state !== 'open';
  }

  /** Distinct accounts waiting in the queue for a call. */
  get queuedAccounts(): number {
    return this.queue.size;
  }

  /** Lookups that fail before any queue: the request has no time left for a call, or the upstream is known down. */
  private refusal(accounts: string[], deadline: number): Promise<Map<string, TagResult>> | null {
    let error: Error;
    if (Date.now() + MIN_CALL_MS >= deadline) {
      this.events.rateLimited?.(accounts.length);
      error = new RateLimitedError();
    } else if (this.circuit.state === 'open') {
      error = circuitOpenError();
    } else {
      return null;
    }
    return Promise.resolve(new Map(accounts.map((a) => [a, error])));
  }

  private async fromCache(accounts: readonly string[]): Promise<Map<string, string[]>> {
    const cache = this.opts.cache;
    if (!cache) return new Map();
    let hits: Map<string, string[]>;
    try {
      hits = await cache.getMany(accounts);
    } catch (err) {
      this.opts.log.warn({ err: String(err) }, 'tag cache read failed; asking the upstream');
      hits = new Map();
    }
    this.events.cache?.(hits.size, accounts.length - hits.size);
    return hits;
  }

  /** The cache's stamp for a read about to start; null when there is no cache to fill or it cannot stamp. */
  private async stampRead(): Promise<number | null> {
    try {
      return (await this.opts.cache?.beginRead()) ?? null;
    } catch (err) {
      this.opts.log.debug({ err: String(err) }, 'tag cache could not stamp a read; its answer will not be cached');
      return null;
    }
  }

  private async remember(tags: Map<string, TagResult>, readStartedAt: number | null): Promise<void> {
    const cache = this.opts.cache;
    if (!cache || readStartedAt === null) return;
    const good = new Map<string, string[]>();
    for (const [account, result] of tags) if (Array.isArray(result)) good.set(account, result);
    try {
      await cache.setMany(good, readStartedAt);
    } catch (err) {
      this.opts.log.warn({ err: String(err) }, 'tag cache write failed');
    }
  }

  // --- coalesced lookups -------------------------------------------------

  private enqueue(accounts: string[], deadline: number, trace: RequestTrace): Promise<Map<string, TagResult>> {
    const fresh = accounts.filter((a) => !this.queue.has(a)).length;
    if (!this.canServeInTime(this.queue.size + fresh, deadline)) {
      this.events.rateLimited?.(accounts.length);
      const error = new RateLimitedError();
      return Promise.resolve(new Map(accounts.map((a) => [a, error])));
    }
    const waiters: Waiter[] = [];
    const results = accounts.map(
      (account) =>
        new Promise<[string, TagResult]>((resolve) => {
          let settled = false;
          const waiter: Waiter = {
            deadline,
            trace,
            sent: false,
            resolve: (r) => {
              if (settled) return;
              settled = true;
              resolve([account, 'tags' in r ? r.tags : r.error]);
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
    const msNeeded = ((callsAhead - 1) * 1000) / this.opts.budget.limit;
    return Date.now() + msNeeded + MIN_CALL_MS < deadline;
  }

  /** Answers a request's lookups still open at its deadline: still queued, the budget ran out; sent, the upstream did. */
  private giveUp(accounts: string[], waiters: Waiter[]): void {
    waiters.forEach((waiter, i) => {
      if (waiter.sent) {
        waiter.resolve({ error: TimError.unavailable('no answer from TIM before the request deadline') });
        return;
      }
      waiter.resolve({ error: new RateLimitedError() });
      this.forget(accounts[i]!, waiter);
    });
  }

  /** Takes a waiter that gave up out of the queue, so memory goes with it. */
  private forget(account: string, waiter: Waiter): void {
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
   * be had by then, no lookup due by then can be served, so those fail and the
   * rest of the queue keeps its place.
   */
  private async dispatch(): Promise<void> {
    try {
      for (let due = this.headDeadline(); due !== null; due = this.headDeadline()) {
        const waitStarted = Date.now();
        const slot = await this.slotFor(due);
        const waitedMs = Date.now() - waitStarted;
        this.events.budgetWait?.(waitedMs);
        if (!slot) {
          this.refuseDueBy(due);
          continue;
        }
        const batch = this.takeBatch();
        if (batch.size === 0) {
          slot.unused();
          continue;
        }
        void this.sendLookup(batch, slot, waitedMs);
      }
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'upstream dispatcher failed');
      settle(this.takeBatch(Infinity), () => ({ error: TimError.unavailable('upstream dispatcher failed') }));
    } finally {
      this.pumping = false;
      if (this.queue.size > 0) this.pump();
    }
  }

  /** The earliest deadline of the head account's lookups, failing those already past it; null when the queue is empty. */
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

  /** Fails every queued lookup due by `due`: the budget has no slot for it in time. */
  private refuseDueBy(due: number): void {
    let refused = 0;
    for (const [account, waiters] of this.queue) {
      const rest = waiters.filter((w) => {
        if (w.deadline > due) return true;
        w.resolve({ error: new RateLimitedError() });
        refused++;
        return false;
      });
      if (rest.length === 0) this.queue.delete(account);
      else if (rest.length !== waiters.length) this.queue.set(account, rest);
    }
    if (refused > 0) this.events.rateLimited?.(refused);
  }

  /** Cuts up to `size` accounts that still have a live lookup from the head of the queue. */
  private takeBatch(size = MAX_ACCOUNTS_PER_CALL): Map<string, Waiter[]> {
    const batch = new Map<string, Waiter[]>();
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

  /** The lookups whose requests still have time; the others fail as rate limited (they waited for the budget). */
  private liveOf(waiters: Waiter[]): Waiter[] {
    const now = Date.now();
    return waiters.filter((w) => {
      if (w.deadline > now) return true;
      w.resolve({ error: new RateLimitedError() });
      return false;
    });
  }

  private async sendLookup(batch: Map<string, Waiter[]>, slot: BudgetSlot, waitedMs: number): Promise<void> {
    const accounts = [...batch.keys()];
    let deadline = 0;
    const traces: RequestTrace[] = [];
    for (const waiters of batch.values())
      for (const w of waiters) {
        deadline = Math.max(deadline, w.deadline);
        traces.push(w.trace);
      }
    let results: Map<string, TagResult>;
    try {
      results = await this.getTagsCall(accounts, deadline, traceOf(traces, waitedMs), slot);
    } catch (err) {
      // getTagsCall does not reject; this only keeps a bug from leaving requests without an answer.
      this.opts.log.error({ err: String(err) }, 'upstream lookup failed');
      const error = TimError.unavailable('upstream lookup failed');
      results = new Map(accounts.map((a) => [a, error]));
    }
    settle(batch, (account) => {
      const r = results.get(account) ?? TimError.unavailable(`no answer for account ${account}`);
      return Array.isArray(r) ? { tags: r } : { error: r };
    });
  }

  // --- direct lookups (coalescing off) -------------------------------------

  private async lookupDirect(
    accounts: string[],
    deadline: number,
    trace: RequestTrace,
  ): Promise<Map<string, TagResult>> {
    const calls = planAccountCalls(accounts).map((batch) => this.getTagsCall(batch, deadline, traceOf([trace])));
    const out = new Map<string, TagResult>();
    for (const results of await Promise.all(calls)) for (const [a, r] of results) out.set(a, r);
    return out;
  }

  /** One im_get_tag call (with its retries), read by account; never rejects. */
  private async getTagsCall(
    accounts: string[],
    deadline: number,
    trace: CallTrace,
    slot?: BudgetSlot,
  ): Promise<Map<string, TagResult>> {
    const out = new Map<string, TagResult>();
    try {
      const readStartedAt = await this.stampRead();
      const answer = await this.send<GetTagAnswer>(
        'im_get_tag',
        { To_Account: accounts },
        accounts.length,
        deadline,
        trace,
        slot,
      );
      for (const [account, r] of readGetTagAnswer(accounts, answer)) out.set(account, 'tags' in r ? r.tags : r.error);
      await this.remember(out, readStartedAt);
    } catch (error) {
      slot?.unused(); // when the call never went (a no-op once it did)
      for (const account of accounts) out.set(account, error as Error);
    }
    return out;
  }

  // --- one call, paced and retried -----------------------------------------

  /**
   * Makes one logical call: takes a budget slot for every attempt (the first
   * may come with the call), and retries what TIM-API.md says may be retried
   * while the deadline allows; no attempt runs past the deadline. Retrying is
   * safe for every tag command: gets read, and adds and removes are idempotent
   * (adding a tag held already, or removing one not held, changes nothing).
   */
  private async send<A extends CommonAnswer>(
    command: TagCommand,
    body: object,
    accounts: number,
    deadline: number,
    trace: CallTrace,
    firstSlot?: BudgetSlot,
  ): Promise<A> {
    let slot = firstSlot ?? null;
    let sigRenewed = false;
    let waitedMs = trace.firstWaitMs;
    for (let attempt = 1; ; attempt++) {
      if (this.circuit.state === 'open') {
        slot?.unused();
        throw circuitOpenError();
      }
      if (!slot) {
        const waitStarted = Date.now();
        slot = await this.slotFor(deadline);
        waitedMs = Date.now() - waitStarted;
        this.events.budgetWait?.(waitedMs);
        if (!slot) {
          this.events.rateLimited?.(accounts);
          throw new RateLimitedError();
        }
      }
      const timeLeft = deadline - Date.now();
      if (timeLeft <= 0) {
        slot.unused();
        throw TimError.unavailable('no time left before the request deadline');
      }
      if (!this.circuit.allow()) {
        slot.unused();
        throw circuitOpenError();
      }
      let error: TimError;
      // TODO(merge): the one span per attempt; it belongs in the attempt loop.
      const span = this.tracer.call({ command, accounts, attempt, budgetWaitMs: waitedMs, requests: trace.requests });
      try {
        const answer = await this.opts.client.call<A>(command, body, accounts, timeLeft);
        span.end();
        this.circuit.success();
        return answer;
      } catch (err) {
        error = err instanceof TimError ? err : TimError.unavailable(String(err));
        span.end({ errorCode: error.code || undefined, error: error.message });
      } finally {
        slot.ended();
        slot = null;
        waitedMs = 0;
      }
      this.judge(error, deadline);
      const step = nextStep(this.retry, error, attempt, sigRenewed);
      if (step.action === 'give-up') throw error;
      this.events.retry?.(command, error.code);
      if (step.action === 'renew-sig') {
        this.opts.client.renewSig();
        sigRenewed = true;
        continue;
      }
      if (Date.now() + step.delayMs + MIN_CALL_MS >= deadline) throw error;
      this.opts.log.debug({ command, code: error.code, delayMs: step.delayMs, attempt }, 'retrying upstream call');
      await sleep(step.delayMs);
    }
  }

  /**
   * Tells the circuit what a failed attempt says about the upstream: no usable
   * answer or an internal error is an outage; being busy (60007, 60011), or
   * running into the request's own deadline, says nothing either way; any
   * other refusal means it works.
   */
  private judge(error: TimError, deadline: number): void {
    if (error.code === TimCode.RATE_LIMITED || error.code === TimCode.APP_RATE_LIMITED || Date.now() >= deadline) {
      this.circuit.inconclusive();
    } else if (error.kind === 'unavailable' || OUTAGE_CODES.has(error.code)) {
      this.circuit.failure();
    } else {
      this.circuit.success();
    }
  }

  /** A budget slot in time for a call that must end by `deadline`, or null when none can be had. */
  private slotFor(deadline: number): Promise<BudgetSlot | null> {
    return this.opts.budget.acquireSlot(deadline - MIN_CALL_MS);
  }
}

/** The distinct operations a call serves, first come first; a new slot's wait is measured by `send`. */
function traceOf(traces: readonly RequestTrace[], firstWaitMs = 0): CallTrace {
  const requests = new Map<string, SpanContext>();
  for (const t of traces) if (t && !requests.has(t.spanId)) requests.set(t.spanId, t);
  return { requests: [...requests.values()], firstWaitMs };
}

function accountsOf(call: UserTags[] | string[]): string[] {
  return call.map((c) => (typeof c === 'string' ? c : c.To_Account));
}

function circuitOpenError(): TimError {
  return TimError.unavailable('the upstream is failing; calls are paused for a moment');
}

function settle(batch: Map<string, Waiter[]>, result: (account: string) => AccountTags | { error: Error }): void {
  for (const [account, waiters] of batch) {
    const r = result(account);
    for (const w of waiters) w.resolve(r);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
