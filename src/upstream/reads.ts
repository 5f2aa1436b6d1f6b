/**
 * One batched read command, read through its cache: `get` answers what the
 * cache holds, and sends the rest through the command's lookup queue (or, with
 * coalescing off, as this request's own calls: the per-request DataLoader
 * baseline the bench compares against). A call's answer fills the cache only
 * under the read stamp taken before it was sent, so a write that dropped an
 * account meanwhile is never undone by a slow read.
 */
import type { Logger } from 'pino';
import type { AnswerOf, LookupCommand } from '../tim/commands.js';
import { chunk } from '../tim/tags.js';
import { MAX_ACCOUNTS_PER_CALL } from '../tim/wire.js';
import type { AttemptLoop } from './attempt.js';
import type { BudgetSlot } from './budget.js';
import type { AccountCache } from './cache.js';
import { LookupQueue, type Lookup } from './lookup-queue.js';
import type { RequestTrace } from './trace.js';

export interface AccountReadsOptions<C extends LookupCommand, V> {
  command: C;
  attempts: AttemptLoop;
  /** Reads one call's answer by account; throws a TimError when the answer cannot be read at all. */
  read(accounts: readonly string[], answer: AnswerOf<C>): Map<string, Lookup<V>>;
  cache?: AccountCache<V>;
  /** Off: each request's batches are sent as they are (the bench's per-request baseline). Default on. */
  coalesce?: boolean;
  log: Logger;
  events?: { cache?(hits: number, misses: number): void };
}

export class AccountReads<C extends LookupCommand, V> {
  readonly queue: LookupQueue<V>;

  constructor(private readonly opts: AccountReadsOptions<C, V>) {
    this.queue = new LookupQueue<V>({
      command: opts.command,
      attempts: opts.attempts,
      fetch: (accounts, deadline, slot, traces) => this.fetch(accounts, deadline, traces, slot),
      log: opts.log,
    });
  }

  /** Each account's value, in the order given; never rejects, failures are per account. */
  get(accounts: readonly string[], deadline: number, trace?: RequestTrace): Promise<Array<Lookup<V>>> {
    // Without a cache, nothing to await first: the lookups join the queue in this turn.
    if (!this.opts.cache) return this.getFetched(accounts, distinct(accounts), deadline, trace);
    return this.getCached(accounts, deadline, trace);
  }

  private async getCached(
    accounts: readonly string[],
    deadline: number,
    trace: RequestTrace,
  ): Promise<Array<Lookup<V>>> {
    const cached = await this.fromCache(accounts);
    if (cached.size === 0) return this.getFetched(accounts, distinct(accounts), deadline, trace);
    const misses = [...new Set(accounts.filter((a) => !cached.has(a)))];
    const fetched = misses.length > 0 ? await this.lookup(misses, deadline, trace) : new Map<string, Lookup<V>>();
    return accounts.map((a) => cached.get(a) ?? fetched.get(a) ?? new Error(`no answer for account ${a}`));
  }

  /**
   * `accounts`' values, all looked up (`misses` are the same accounts, distinct). A `.then`, not an
   * `await`: every request waiting for its call holds this, and an async frame is the larger.
   */
  private getFetched(
    accounts: readonly string[],
    misses: readonly string[],
    deadline: number,
    trace: RequestTrace,
  ): Promise<Array<Lookup<V>>> {
    const fetched =
      misses.length > 0 ? this.lookup(misses, deadline, trace) : Promise.resolve(new Map<string, Lookup<V>>());
    return fetched.then((found) => accounts.map((a) => found.get(a) ?? new Error(`no answer for account ${a}`)));
  }

  /** Drops the accounts' cached values (a write is about to change them, or just did). */
  async drop(accounts: readonly string[]): Promise<void> {
    await this.opts.cache?.invalidate(accounts);
  }

  private lookup(accounts: readonly string[], deadline: number, trace: RequestTrace): Promise<Map<string, Lookup<V>>> {
    if (this.opts.coalesce !== false) return this.queue.lookup(accounts, deadline, trace);
    return this.lookupDirect(accounts, deadline, trace);
  }

  private async lookupDirect(
    accounts: readonly string[],
    deadline: number,
    trace: RequestTrace,
  ): Promise<Map<string, Lookup<V>>> {
    const refusal = this.opts.attempts.refusal(deadline);
    if (refusal) return new Map(accounts.map((a) => [a, refusal]));
    const calls = chunk(accounts, MAX_ACCOUNTS_PER_CALL).map((batch) => this.fetch(batch, deadline, [trace]));
    const out = new Map<string, Lookup<V>>();
    for (const results of await Promise.all(calls)) for (const [a, r] of results) out.set(a, r);
    return out;
  }

  /** One call (with its retries), read by account; never rejects. */
  private async fetch(
    accounts: string[],
    deadline: number,
    traces: readonly RequestTrace[],
    slot?: BudgetSlot,
  ): Promise<Map<string, Lookup<V>>> {
    try {
      const readStartedAt = this.opts.cache ? await this.stampRead() : null;
      const body = { To_Account: accounts };
      const answer = await this.opts.attempts.call(this.opts.command, body, deadline, { firstSlot: slot, traces });
      const out = this.opts.read(accounts, answer);
      if (readStartedAt !== null) await this.remember(out, readStartedAt);
      return out;
    } catch (error) {
      slot?.unused(); // when the call never went (a no-op once it did)
      return new Map(accounts.map((a) => [a, error as Error]));
    }
  }

  private async fromCache(accounts: readonly string[]): Promise<Map<string, V>> {
    const cache = this.opts.cache;
    if (!cache) return new Map();
    let hits: Map<string, V>;
    try {
      hits = await cache.getMany(accounts);
    } catch (err) {
      this.opts.log.warn({ err: String(err), command: this.opts.command }, 'cache read failed; asking the upstream');
      hits = new Map();
    }
    this.opts.events?.cache?.(hits.size, accounts.length - hits.size);
    return hits;
  }

  /** The cache's stamp for a read about to start; null when there is no cache to fill or it cannot stamp. */
  private async stampRead(): Promise<number | null> {
    try {
      return (await this.opts.cache?.beginRead()) ?? null;
    } catch (err) {
      this.opts.log.debug({ err: String(err) }, 'cache could not stamp a read; its answer will not be cached');
      return null;
    }
  }

  private async remember(results: Map<string, Lookup<V>>, readStartedAt: number | null): Promise<void> {
    const cache = this.opts.cache;
    if (!cache || readStartedAt === null) return;
    const good = new Map<string, V>();
    for (const [account, result] of results) if (!(result instanceof Error)) good.set(account, result);
    try {
      await cache.setMany(good, readStartedAt);
    } catch (err) {
      this.opts.log.warn({ err: String(err) }, 'cache write failed');
    }
  }
}

/** The accounts once each; the same list when none is named twice (a request's loader never does). */
function distinct(accounts: readonly string[]): readonly string[] {
  if (accounts.length < 2) return accounts;
  const seen = new Set(accounts);
  return seen.size === accounts.length ? accounts : [...seen];
}
