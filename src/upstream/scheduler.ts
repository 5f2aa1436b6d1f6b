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
 */
import type { Logger } from 'pino';
import type { TimClient } from '../tim/client.js';
import { TimError } from '../tim/errors.js';
import { planAccountCalls, readGetTagAnswer, type AccountTags } from '../tim/tags.js';
import {
  MAX_ACCOUNTS_PER_CALL,
  type CommonAnswer,
  type GetTagAnswer,
  type TagCommand,
  type UserTags,
} from '../tim/wire.js';
import type { RateBudget } from './budget.js';
import type { TagCache } from './cache.js';
import { Circuit } from './circuit.js';
import { RateLimitedError } from './errors.js';
import { DEFAULT_RETRY, nextStep, type RetryPolicy } from './retry.js';

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
}

/** One write call: what was sent and, when it failed, why. */
export interface WriteOutcome {
  accounts: string[];
  error?: Error;
  /** Accounts the upstream refused one by one (`ErrorList`), with their own errors. */
  accountErrors: Map<string, Error>;
}

interface Waiter {
  resolve(result: AccountTags | { error: Error }): void;
  deadline: number;
}

export class UpstreamScheduler {
  readonly circuit: Circuit;
  private readonly queue = new Map<string, Waiter[]>();
  private pumping = false;
  private readonly retry: RetryPolicy;
  private readonly events: SchedulerEvents;

  constructor(private readonly opts: SchedulerOptions) {
    this.circuit = opts.circuit ?? new Circuit();
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.events = opts.events ?? {};
  }

  /** Tags of each account, in the order given; never rejects, failures are per account. */
  async getTags(accounts: readonly string[], deadline: number): Promise<TagResult[]> {
    const cached = await this.fromCache(accounts);
    const misses = [...new Set(accounts.filter((a) => !cached.has(a)))];
    const fetched = new Map<string, TagResult>();
    if (misses.length > 0) {
      const lookups = this.opts.coalesce === false ? this.lookupDirect(misses, deadline) : this.enqueue(misses, deadline);
      for (const [account, result] of await lookups) fetched.set(account, result);
    }
    return accounts.map((a) => cached.get(a) ?? fetched.get(a) ?? new Error(`no answer for account ${a}`));
  }

  /**
   * Sends a write, split by the caller into calls that fit the upstream, one
   * call after another, and says what became of each. Cached tags of every
   * account named are dropped before the first call and after the last.
   */
  async write(command: Exclude<TagCommand, 'im_get_tag'>, calls: Array<UserTags[] | string[]>, deadline: number): Promise<WriteOutcome[]> {
    const touched = calls.flatMap(accountsOf);
    await this.opts.cache?.invalidate(touched);
    const outcomes: WriteOutcome[] = [];
    try {
      for (const call of calls) {
        const body = typeof call[0] === 'string' ? { To_Account: call } : { UserTags: call };
        const accounts = accountsOf(call);
        try {
          const answer = await this.send<CommonAnswer>(command, body, accounts.length, deadline);
          const accountErrors = new Map<string, Error>();
          for (const e of answer.ErrorList ?? []) accountErrors.set(e.To_Account, TimError.fail(e.ErrorCode, e.ErrorInfo ?? ''));
          outcomes.push({ accounts, accountErrors });
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

  private enqueue(accounts: string[], deadline: number): Promise<Map<string, TagResult>> {
    const fresh = accounts.filter((a) => !this.queue.has(a)).length;
    if (!this.canServeInTime(this.queue.size + fresh, deadline)) {
      this.events.rateLimited?.(accounts.length);
      const error = new RateLimitedError();
      return Promise.resolve(new Map(accounts.map((a) => [a, error])));
    }
    const results = accounts.map(
      (account) =>
        new Promise<[string, TagResult]>((resolve) => {
          const waiter: Waiter = {
            deadline,
            resolve: (r) => resolve([account, 'tags' in r ? r.tags : r.error]),
          };
          const waiters = this.queue.get(account);
          if (waiters) waiters.push(waiter);
          else this.queue.set(account, [waiter]);
        }),
    );
    this.pump();
    return Promise.all(results).then((entries) => new Map(entries));
  }

  /**
   * Whether `queued` accounts can all leave before `deadline` at the budget's
   * pace; when not, the lookup fails at once instead of growing the queue.
   */
  private canServeInTime(queued: number, deadline: number): boolean {
    const callsAhead = Math.ceil(queued / MAX_ACCOUNTS_PER_CALL);
    const secondsNeeded = Math.max(0, callsAhead - this.opts.budget.limit) / this.opts.budget.limit;
    return Date.now() + secondsNeeded * 1000 < deadline;
  }

  /** Runs the dispatcher unless it runs already; it stops when the queue is empty. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    // setImmediate, not a microtask: lookups of every request that arrived in
    // this turn of the event loop join the first batch.
    setImmediate(() => void this.dispatch());
  }

  private async dispatch(): Promise<void> {
    try {
      while (this.queue.size > 0) {
        this.dropExpired();
        if (this.queue.size === 0) break;
        const deadline = this.headDeadline();
        const waitStarted = Date.now();
        const granted = await this.opts.budget.acquire(deadline);
        this.events.budgetWait?.(Date.now() - waitStarted);
        const batch = this.takeBatch();
        if (!granted) {
          this.events.rateLimited?.(batch.size);
          settle(batch, () => ({ error: new RateLimitedError() }));
          continue;
        }
        void this.sendLookup(batch);
      }
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'upstream dispatcher failed');
      const batch = this.takeBatch(Infinity);
      settle(batch, () => ({ error: TimError.unavailable('upstream dispatcher failed') }));
    } finally {
      this.pumping = false;
      if (this.queue.size > 0) this.pump();
    }
  }

  /** Fails the lookups whose requests have run out of time. */
  private dropExpired(): void {
    const now = Date.now();
    for (const [account, waiters] of this.queue) {
      const live = waiters.filter((w) => {
        if (w.deadline > now) return true;
        w.resolve({ error: new RateLimitedError() });
        return false;
      });
      if (live.length === 0) this.queue.delete(account);
      else if (live.length !== waiters.length) this.queue.set(account, live);
    }
  }

  private headDeadline(): number {
    const first = this.queue.values().next().value as Waiter[];
    return Math.max(...first.map((w) => w.deadline));
  }

  private takeBatch(size = MAX_ACCOUNTS_PER_CALL): Map<string, Waiter[]> {
    const batch = new Map<string, Waiter[]>();
    for (const [account, waiters] of this.queue) {
      if (batch.size >= size) break;
      batch.set(account, waiters);
      this.queue.delete(account);
    }
    return batch;
  }

  private async sendLookup(batch: Map<string, Waiter[]>): Promise<void> {
    const accounts = [...batch.keys()];
    const deadline = Math.max(...[...batch.values()].flat().map((w) => w.deadline));
    const results = await this.getTagsCall(accounts, deadline, true);
    settle(batch, (account) => {
      const r = results.get(account)!;
      return Array.isArray(r) ? { tags: r } : { error: r };
    });
  }

  // --- direct lookups (coalescing off) -------------------------------------

  private async lookupDirect(accounts: string[], deadline: number): Promise<Map<string, TagResult>> {
    const calls = planAccountCalls(accounts).map((batch) => this.getTagsCall(batch, deadline, false));
    const out = new Map<string, TagResult>();
    for (const results of await Promise.all(calls)) for (const [a, r] of results) out.set(a, r);
    return out;
  }

  /** One im_get_tag call (with its retries), read by account; never rejects. */
  private async getTagsCall(accounts: string[], deadline: number, budgetGranted: boolean): Promise<Map<string, TagResult>> {
    const readStartedAt = await this.stampRead();
    const out = new Map<string, TagResult>();
    try {
      const answer = await this.send<GetTagAnswer>('im_get_tag', { To_Account: accounts }, accounts.length, deadline, budgetGranted);
      for (const [account, r] of readGetTagAnswer(accounts, answer)) out.set(account, 'tags' in r ? r.tags : r.error);
      await this.remember(out, readStartedAt);
    } catch (error) {
      for (const account of accounts) out.set(account, error as Error);
    }
    return out;
  }

  // --- one call, paced and retried -----------------------------------------

  /**
   * Makes one logical call: takes a budget slot for every attempt, and retries
   * what TIM-API.md says may be retried while the deadline allows. Retrying is
   * safe for every tag command: gets read, and adds and removes are idempotent
   * (adding a tag held already, or removing one not held, changes nothing).
   */
  private async send<A extends CommonAnswer>(
    command: TagCommand,
    body: object,
    accounts: number,
    deadline: number,
    budgetGranted = false,
  ): Promise<A> {
    let sigRenewed = false;
    for (let attempt = 1; ; attempt++) {
      if (!budgetGranted) {
        const waitStarted = Date.now();
        if (!(await this.opts.budget.acquire(deadline))) {
          this.events.rateLimited?.(accounts);
          throw new RateLimitedError();
        }
        this.events.budgetWait?.(Date.now() - waitStarted);
      }
      budgetGranted = false;
      if (!this.circuit.allow()) throw TimError.unavailable('the upstream is failing; calls are paused for a moment');
      try {
        const answer = await this.opts.client.call<A>(command, body, accounts);
        this.circuit.success();
        return answer;
      } catch (err) {
        const timErr = err instanceof TimError ? err : TimError.unavailable(String(err));
        if (timErr.retryable) this.circuit.failure();
        else this.circuit.success();
        const step = nextStep(this.retry, timErr, attempt, sigRenewed);
        if (step.action === 'give-up') throw timErr;
        this.events.retry?.(command, timErr.code);
        if (step.action === 'renew-sig') {
          this.opts.client.renewSig();
          sigRenewed = true;
          continue;
        }
        if (Date.now() + step.delayMs >= deadline) throw timErr;
        this.opts.log.debug({ command, code: timErr.code, delayMs: step.delayMs, attempt }, 'retrying upstream call');
        await sleep(step.delayMs);
      }
    }
  }
}

function accountsOf(call: UserTags[] | string[]): string[] {
  return call.map((c) => (typeof c === 'string' ? c : c.To_Account));
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
