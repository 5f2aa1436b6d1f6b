/**
 * The shared account cache (REDIS_URL with TAGS_CACHE_TTL_MS), one per read
 * command (tags, attributes, under their own keys): every gateway
 * process of one app reads and fills one set of entries, and a write through
 * any of them drops its users' entries for all.
 *
 * A read that started before a drop must not store what it read after the
 * drop, or the old tags would outlive the write. So a drop leaves a tombstone
 * holding the drop's time, and the store is a script that skips every account
 * whose tombstone is not older than the read's start. Both times are Redis's
 * own clock: read starts are stamped by Redis (`beginRead`), so the gateways'
 * clocks never meet.
 *
 * Redis away costs hits, never answers: reads miss, stores are skipped, and a
 * drop that could not be made is owed and made before this process uses the
 * cache again.
 */
import type { Logger } from 'pino';
import type { Attrs } from '../tim/wire.js';
import { DROP_MEMORY_MS, type AccountCache } from './cache.js';
import { RedisLink, RedisUnavailableError, redisTimeMs } from './redis.js';

/** How long a drop's tombstone lasts: longer than any read may take (see DROP_MEMORY_MS). */
const TOMBSTONE_MS = DROP_MEMORY_MS;
/** Most owed drops remembered one by one; past this the whole cache of the app is emptied instead. */
const MAX_OWED = 10_000;
/** Accounts per script call and keys per SCAN step. */
const CHUNK = 500;

/** KEYS: (tags, dropped) per account; ARGV[1] tombstone ms. Drops the entries, stamps the tombstones. */
const DROP_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 1, #KEYS, 2 do
  redis.call('DEL', KEYS[i])
  redis.call('SET', KEYS[i + 1], now, 'PX', ARGV[1])
end
return now
`;

/** KEYS: (tags, dropped) per account; ARGV read start (Redis ms), ttl ms, then each account's tags. */
const STORE_SCRIPT = `
local readStart = tonumber(ARGV[1])
local stored = 0
for i = 1, #KEYS, 2 do
  local dropped = redis.call('GET', KEYS[i + 1])
  if not dropped or tonumber(dropped) < readStart then
    redis.call('SET', KEYS[i], ARGV[2 + (i + 1) / 2], 'PX', ARGV[2])
    stored = stored + 1
  end
end
return stored
`;

interface CacheCommands {
  timTagsDrop(...keysThenArgs: Array<string | number>): Promise<number>;
  timTagsStore(...keysThenArgs: Array<string | number>): Promise<number>;
}

export interface RedisCacheOptions {
  url: string;
  sdkappid: number;
  ttlMs: number;
  log: Logger;
  /** Default `tim-tags:{sdkappid}`; the braces keep an app's keys in one Redis Cluster slot. */
  keyPrefix?: string;
  commandTimeoutMs?: number;
}

/** What one cache keeps: its keys' names and how a stored value is read back (undefined: not a value). */
export interface CachedKind<V> {
  /** The key segment of values (`tags`, `attrs`) and of tombstones (`dropped`, `attrs-dropped`). */
  values: string;
  tombstones: string;
  parse(value: unknown): V | undefined;
}

export const TAGS_KIND: CachedKind<string[]> = {
  values: 'tags',
  tombstones: 'dropped',
  parse: (tags) => (Array.isArray(tags) && tags.every((t) => typeof t === 'string') ? tags : undefined),
};

export const ATTRS_KIND: CachedKind<Attrs> = {
  values: 'attrs',
  tombstones: 'attrs-dropped',
  parse: (attrs) =>
    typeof attrs === 'object' &&
    attrs !== null &&
    !Array.isArray(attrs) &&
    Object.values(attrs).every((v) => typeof v === 'string')
      ? (attrs as Attrs)
      : undefined,
};

export class RedisAccountCache<V> implements AccountCache<V> {
  private readonly prefix: string;
  /** Accounts whose drop failed while Redis was away. */
  private readonly owed = new Set<string>();
  /** More drops were owed than remembered: empty the app's whole cache when Redis is back. */
  private owesFlush = false;
  /** The owed drops being made now, if any. */
  private settling: Promise<void> | null = null;

  static async connect<V>(opts: RedisCacheOptions, kind: CachedKind<V>): Promise<RedisAccountCache<V>> {
    const link = await RedisLink.open({
      url: opts.url,
      service: `${kind.values} cache`,
      log: opts.log,
      fallback: `serving without the shared ${kind.values} cache`,
      commandTimeoutMs: opts.commandTimeoutMs,
    });
    return new RedisAccountCache(opts, link, kind);
  }

  private constructor(
    private readonly opts: RedisCacheOptions,
    private readonly link: RedisLink,
    private readonly kind: CachedKind<V>,
  ) {
    this.prefix = opts.keyPrefix ?? `tim-tags:{${opts.sdkappid}}`;
    link.redis.defineCommand('timTagsDrop', { lua: DROP_SCRIPT });
    link.redis.defineCommand('timTagsStore', { lua: STORE_SCRIPT });
  }

  async beginRead(): Promise<number> {
    await this.settleOwed();
    return redisTimeMs(await this.link.run((redis) => redis.time()));
  }

  async getMany(accounts: readonly string[]): Promise<Map<string, V>> {
    const hits = new Map<string, V>();
    if (accounts.length === 0) return hits;
    let values: Array<string | null>;
    try {
      await this.settleOwed();
      values = await this.link.run((redis) => redis.mget(accounts.map((a) => this.tagsKey(a))));
    } catch (err) {
      if (err instanceof RedisUnavailableError) return hits; // the outage is logged once by the link
      throw err;
    }
    accounts.forEach((account, i) => {
      const value = this.parse(values[i]);
      if (value !== undefined) hits.set(account, value);
    });
    return hits;
  }

  async setMany(entries: ReadonlyMap<string, V>, readStartedAt: number): Promise<void> {
    if (entries.size === 0) return;
    try {
      await this.settleOwed();
      for (const chunk of chunks([...entries.keys()])) {
        const keys = chunk.flatMap((a) => [this.tagsKey(a), this.droppedKey(a)]);
        const tags = chunk.map((a) => JSON.stringify(entries.get(a)));
        await this.link.run((redis) =>
          commands(redis).timTagsStore(keys.length, ...keys, readStartedAt, this.opts.ttlMs, ...tags),
        );
      }
    } catch (err) {
      if (!(err instanceof RedisUnavailableError)) throw err;
    }
  }

  /** Never fails: a drop Redis could not take is owed, and paid before this process uses the cache again. */
  async invalidate(accounts: readonly string[]): Promise<void> {
    if (accounts.length === 0) return;
    try {
      await this.settleOwed();
      await this.drop([...new Set(accounts)]);
    } catch (err) {
      if (!(err instanceof RedisUnavailableError)) throw err;
      this.owe(accounts);
    }
  }

  describe(): string {
    const problem = this.link.problem;
    if (problem) return `no shared cache: ${problem}`;
    return `redis (${this.opts.ttlMs} ms, shared by every gateway of the app)`;
  }

  close(): Promise<void> {
    return this.link.close();
  }

  private tagsKey(account: string): string {
    return `${this.prefix}:${this.kind.values}:${account}`;
  }

  private droppedKey(account: string): string {
    return `${this.prefix}:${this.kind.tombstones}:${account}`;
  }

  private parse(value: string | null | undefined): V | undefined {
    if (value == null) return undefined;
    try {
      return this.kind.parse(JSON.parse(value));
    } catch {
      return undefined;
    }
  }

  private async drop(accounts: string[]): Promise<void> {
    for (const chunk of chunks(accounts)) {
      const keys = chunk.flatMap((a) => [this.tagsKey(a), this.droppedKey(a)]);
      await this.link.run((redis) => commands(redis).timTagsDrop(keys.length, ...keys, TOMBSTONE_MS));
    }
  }

  private owe(accounts: readonly string[]): void {
    if (this.owesFlush) return;
    for (const account of accounts) this.owed.add(account);
    if (this.owed.size > MAX_OWED) {
      this.owed.clear();
      this.owesFlush = true;
    }
  }

  /**
   * Makes the drops owed from an outage before the cache is used again, so
   * this process never reads or stores past a write it answered. Throws
   * RedisUnavailableError while Redis is still away. Callers that arrive
   * while the drops are being made wait for the same work rather than each
   * making it again (a flush scans the whole of Redis).
   */
  private settleOwed(): Promise<void> {
    if (this.settling) return this.settling;
    if (!this.owesFlush && this.owed.size === 0) return Promise.resolve();
    this.settling = this.payOwed().finally(() => (this.settling = null));
    return this.settling;
  }

  /** Until nothing is owed: drops owed while it runs are paid too, before anyone waiting goes on. */
  private async payOwed(): Promise<void> {
    while (this.owesFlush || this.owed.size > 0) {
      if (this.owesFlush) {
        // Drops owed from now on are remembered by name: the scan may already be past their keys.
        this.owesFlush = false;
        try {
          await this.flushAll();
        } catch (err) {
          this.owesFlush = true;
          throw err;
        }
        continue;
      }
      const accounts = [...this.owed];
      await this.drop(accounts);
      for (const account of accounts) this.owed.delete(account);
      this.opts.log.info(
        { accounts: accounts.length },
        `${this.kind.values} cache: dropped the entries of writes made while Redis was away`,
      );
    }
  }

  /** Too many drops owed to name: every entry of the app goes. Reads that began before stop storing too. */
  private async flushAll(): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await this.link.run((redis) =>
        redis.scan(cursor, 'MATCH', `${this.prefix}:${this.kind.values}:*`, 'COUNT', CHUNK),
      );
      cursor = next;
      const accounts = keys.map((k) => k.slice(`${this.prefix}:${this.kind.values}:`.length));
      if (accounts.length > 0) await this.drop(accounts);
    } while (cursor !== '0');
    this.opts.log.info(
      `${this.kind.values} cache: emptied after more writes while Redis was away than could be remembered`,
    );
  }
}

function commands(redis: unknown): CacheCommands {
  return redis as CacheCommands;
}

/** The shared tag cache. */
export type RedisTagCache = RedisAccountCache<string[]>;
export const RedisTagCache = {
  connect: (opts: RedisCacheOptions): Promise<RedisTagCache> => RedisAccountCache.connect(opts, TAGS_KIND),
};

function chunks<T>(items: T[], size = CHUNK): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
