/**
 * Closing the shared budget and cache while Redis has stopped answering on a
 * live connection (a network partition: no reset, no reply). A gateway's
 * close must still end, or the process never exits after SIGTERM.
 */
import { connect, createServer, type Socket } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisTagCache } from '../../src/upstream/redis-cache.js';
import { RedisRateBudget } from '../../src/upstream/redis-budget.js';
import { dropRedisKeys, uniqueSdkappid } from '../helpers/process.js';
import type { BudgetSlot } from '../../src/upstream/budget.js';
/** Takes a slot and ends its call at once (the fastest answer there is); whether one was granted. */
async function endedAtOnce(budget: { acquireSlot(deadline: number): Promise<BudgetSlot | null> }, deadline: number) {
  const slot = await budget.acquireSlot(deadline);
  slot?.ended();
  return slot !== null;
}

const REDIS_PORT = 6379;
const silent = pino({ level: 'silent' });

/** A TCP proxy to the machine's Redis that can go silent: connections stay open, nothing passes either way. */
async function partitionableProxy(): Promise<{ url: string; partition(): void; close(): Promise<void> }> {
  let partitioned = false;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const redis = connect(REDIS_PORT, '127.0.0.1');
    for (const s of [client, redis]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        redis.destroy();
      });
    }
    client.on('data', (d) => void (partitioned || redis.write(d)));
    redis.on('data', (d) => void (partitioned || client.write(d)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  return {
    url: `redis://127.0.0.1:${port}`,
    partition: () => void (partitioned = true),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** `p`, or a rejection naming `what` when it has not settled within `ms`. */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('closing while Redis does not answer', () => {
  it('the rate budget and the tag cache close within a moment, not never', async () => {
    const sdkappid = uniqueSdkappid();
    const proxy = await partitionableProxy();
    cleanups.push(
      () => proxy.close(),
      () => dropRedisKeys(`redis://127.0.0.1:${REDIS_PORT}`, `tim-tags:{${sdkappid}}:*`),
    );
    const budget = await RedisRateBudget.connect({ url: proxy.url, sdkappid, limit: 10, replicas: 1, log: silent });
    const cache = await RedisTagCache.connect({ url: proxy.url, sdkappid, ttlMs: 10_000, log: silent });
    // Both in use over a live connection.
    expect(await endedAtOnce(budget, Date.now() + 1000)).toBe(true);
    expect(budget.describe()).toMatch(/^redis /);
    await cache.setMany(new Map([['a', ['x']]]), await cache.beginRead());
    expect(await cache.getMany(['a'])).toEqual(new Map([['a', ['x']]]));

    proxy.partition();
    const started = Date.now();
    await within(4000, 'closing the budget and the cache', Promise.all([budget.close(), cache.close()]));
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
