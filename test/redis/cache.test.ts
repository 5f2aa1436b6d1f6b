/** Issue 5: the shared tag cache against the real Redis: TTL, and no stale store after a drop. */
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTRS_KIND, RedisAccountCache, RedisTagCache } from '../../src/upstream/redis-cache.js';
import { dropRedisKeys, freePort, startRedisServer, uniqueSdkappid } from '../helpers/process.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const silent = pino({ level: 'silent' });
const sdkappid = uniqueSdkappid();
const prefix = `tim-tags:{${sdkappid}}`;

let cache: RedisTagCache;
let other: RedisTagCache;
let redis: Redis;

beforeAll(async () => {
  const connect = () => RedisTagCache.connect({ url: REDIS_URL, sdkappid, ttlMs: 60_000, log: silent });
  [cache, other] = await Promise.all([connect(), connect()]);
  redis = new Redis(REDIS_URL);
});
afterAll(async () => {
  await Promise.all([cache.close(), other.close()]);
  redis.disconnect();
  await dropRedisKeys(REDIS_URL, `${prefix}:*`);
});

describe('RedisTagCache', () => {
  it('serves what another gateway stored, for the TTL, and misses the rest', async () => {
    const stamp = await cache.beginRead();
    await cache.setMany(
      new Map([
        ['alice', ['vip', 'beta']],
        ['bob', []],
      ]),
      stamp,
    );
    const hits = await other.getMany(['alice', 'bob', 'carol']);
    expect(hits).toEqual(
      new Map([
        ['alice', ['vip', 'beta']],
        ['bob', []],
      ]),
    );
    const ttl = await redis.pttl(`${prefix}:tags:alice`);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('a drop through one gateway empties the entry for all', async () => {
    await cache.setMany(new Map([['dave', ['old']]]), await cache.beginRead());
    expect(await other.getMany(['dave'])).toEqual(new Map([['dave', ['old']]]));
    await other.invalidate(['dave']);
    expect(await cache.getMany(['dave'])).toEqual(new Map());
  });

  it('a read that began before a drop does not store after it; one that began after does', async () => {
    const before = await cache.beginRead();
    await new Promise((r) => setTimeout(r, 5));
    await other.invalidate(['erin', 'frank']);
    // The read that began before the drop answers afterwards with what it saw: old tags.
    await cache.setMany(
      new Map([
        ['erin', ['old']],
        ['grace', ['kept']],
      ]),
      before,
    );
    expect(await other.getMany(['erin', 'grace'])).toEqual(new Map([['grace', ['kept']]]));
    await new Promise((r) => setTimeout(r, 5));
    const after = await cache.beginRead();
    await cache.setMany(new Map([['frank', ['new']]]), after);
    expect(await other.getMany(['frank'])).toEqual(new Map([['frank', ['new']]]));
  });

  it('stamps reads with Redis time, as the tombstones are', async () => {
    const stamp = await cache.beginRead();
    await other.invalidate(['heidi']);
    const dropped = Number(await redis.get(`${prefix}:dropped:heidi`));
    expect(dropped).toBeGreaterThanOrEqual(stamp);
    expect(await redis.pttl(`${prefix}:dropped:heidi`)).toBeGreaterThan(50_000);
  });

  it('ignores an entry it cannot read instead of failing the lookup', async () => {
    await redis.set(`${prefix}:tags:ivan`, 'not json', 'PX', 10_000);
    expect(await cache.getMany(['ivan'])).toEqual(new Map());
  });
});

describe('RedisTagCache without Redis', () => {
  it('misses, skips stores, owes drops, and says there is no shared cache; nothing throws but the stamp', async () => {
    const away = await RedisTagCache.connect({
      url: `redis://127.0.0.1:${await freePort()}`,
      sdkappid,
      ttlMs: 1000,
      log: silent,
    });
    try {
      expect(await away.getMany(['alice'])).toEqual(new Map());
      await away.setMany(new Map([['alice', ['x']]]), 0);
      await away.invalidate(['alice']);
      await expect(away.beginRead()).rejects.toThrow(/Redis/);
      expect(away.describe()).toBe('no shared cache: Redis unreachable');
    } finally {
      await away.close();
    }
  });
});

describe('RedisTagCache back after an outage', () => {
  it('empties the app once, however many lookups arrive meanwhile, when more drops were owed than it remembers', async () => {
    const server = await startRedisServer();
    const back = await RedisTagCache.connect({ url: server.url, sdkappid, ttlMs: 60_000, log: silent });
    const admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
    admin.on('error', () => {});
    try {
      await server.kill();
      // A bulk write while Redis is away: more drops owed than are remembered one by one.
      await back.invalidate(Array.from({ length: 10_001 }, (_, i) => `w${i}`));
      await server.restart();
      await admin.set(`${prefix}:tags:stale`, '["old"]');
      await until(() => back.describe().startsWith('redis'));
      await admin.config('RESETSTAT');

      const lookups = await Promise.all(Array.from({ length: 20 }, () => back.getMany(['stale', 'w1'])));
      for (const hits of lookups) expect(hits).toEqual(new Map());
      const stats = String(await admin.info('commandstats'));
      const scans = Number(/cmdstat_scan:calls=(\d+)/.exec(stats)?.[1] ?? 0);
      expect(scans).toBe(1); // one pass over an almost empty Redis: one SCAN, not one per lookup
      expect(await admin.exists(`${prefix}:tags:stale`)).toBe(0);
    } finally {
      admin.disconnect();
      await back.close();
      await server.stop();
    }
  });
});

async function until(condition: () => boolean, withinMs = 10_000): Promise<void> {
  const end = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`condition not met within ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the shared attribute cache', () => {
  it('keeps attributes under keys of their own, and a drop through one gateway beats a slow read of another', async () => {
    const connect = () =>
      RedisAccountCache.connect({ url: REDIS_URL, sdkappid, ttlMs: 60_000, log: silent }, ATTRS_KIND);
    const [one, two] = await Promise.all([connect(), connect()]);
    try {
      const slowRead = await one.beginRead();
      await two.invalidate(['mia']); // a write through the other gateway, while the read was out
      await one.setMany(new Map([['mia', { city: 'old' }]]), slowRead);
      expect(await two.getMany(['mia'])).toEqual(new Map());
      await one.setMany(new Map([['kim', { city: 'sz', plan: 'pro' }]]), await one.beginRead());
      expect(await two.getMany(['kim'])).toEqual(new Map([['kim', { city: 'sz', plan: 'pro' }]]));
      expect(await redis.exists(`${prefix}:attrs:kim`)).toBe(1);
      expect(await redis.exists(`${prefix}:tags:kim`)).toBe(0);
      await redis.set(`${prefix}:attrs:lena`, '["a list, not attributes"]', 'PX', 10_000);
      expect(await two.getMany(['lena'])).toEqual(new Map());
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  });
});
