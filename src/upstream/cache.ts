/**
 * The account caches (TAGS_CACHE_TTL_MS), one per read command (tags,
 * attributes): they answer a lookup without an upstream call or any rate
 * budget. A write drops the users' entries before it answers, and an answer
 * read before a drop is never stored after it, so a reader never sees values
 * older than a write that has returned.
 *
 * Every method may throw (a shared cache may be unreachable); the reads layer
 * (src/upstream/reads.ts) treats a failure as a miss or a skipped store.
 */
import { LRUCache } from 'lru-cache';

export interface AccountCache<V> {
  /**
   * Stamps the start of an upstream read, on the cache's own clock (for a
   * shared cache, the clock every gateway shares); pass it to `setMany`.
   */
  beginRead(): Promise<number>;
  getMany(accounts: readonly string[]): Promise<Map<string, V>>;
  /** Stores values read by a call stamped `readStartedAt` by `beginRead`, except for accounts dropped since. */
  setMany(entries: ReadonlyMap<string, V>, readStartedAt: number): Promise<void>;
  invalidate(accounts: readonly string[]): Promise<void>;
  describe(): string;
  close?(): Promise<void>;
}

/**
 * How long a drop is remembered: longer than any read may take. A read ends by its request's
 * deadline, and REQUEST_TIMEOUT_MS is at most 120 s (src/config.ts).
 */
export const DROP_MEMORY_MS = 300_000;

/** A user's tags. */
export type TagCache = AccountCache<string[]>;

export class MemoryAccountCache<V extends object> implements AccountCache<V> {
  private readonly entries: LRUCache<string, V>;
  /** When each account was last dropped, kept as long as a read could still be in flight. */
  private readonly droppedAt: LRUCache<string, number>;
  /**
   * The latest drop whose tombstone was pushed out by newer ones (a bulk write of more than `max`
   * accounts) before a read could have finished: no read begun before it is stored.
   */
  private forgottenDropAt = -Infinity;

  constructor(ttlMs: number, max = 100_000, now: () => number = Date.now) {
    this.entries = new LRUCache({ max, ttl: ttlMs, ttlAutopurge: false, perf: { now } });
    this.droppedAt = new LRUCache({
      max,
      ttl: DROP_MEMORY_MS,
      perf: { now },
      dispose: (at, _account, reason) => {
        if (reason === 'evict') this.forgottenDropAt = Math.max(this.forgottenDropAt, at);
      },
    });
  }

  async beginRead(): Promise<number> {
    return Date.now();
  }

  async getMany(accounts: readonly string[]): Promise<Map<string, V>> {
    const hits = new Map<string, V>();
    for (const account of accounts) {
      const value = this.entries.get(account);
      if (value) hits.set(account, value);
    }
    return hits;
  }

  async setMany(entries: ReadonlyMap<string, V>, readStartedAt: number): Promise<void> {
    if (readStartedAt <= this.forgottenDropAt) return;
    for (const [account, value] of entries) {
      const dropped = this.droppedAt.get(account);
      if (dropped !== undefined && dropped >= readStartedAt) continue;
      this.entries.set(account, value);
    }
  }

  async invalidate(accounts: readonly string[]): Promise<void> {
    const now = Date.now();
    for (const account of accounts) {
      this.entries.delete(account);
      this.droppedAt.set(account, now);
    }
  }

  describe(): string {
    return 'memory';
  }
}

/** The in-process tag cache. */
export class MemoryTagCache extends MemoryAccountCache<string[]> {}
