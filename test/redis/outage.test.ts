/**
 * Issue 5: Redis stops while a gateway serves. The gateway keeps answering on
 * its local share of the budget and without the shared cache, says so on
 * /readyz, and goes back to Redis when it answers again. A throwaway Redis
 * server plays the part: the machine's own on 6379 is never stopped.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TimEmulator } from '../../src/emulator/index.js';
import { RedisRateBudget } from '../../src/upstream/redis-budget.js';
import { ADMIN, callsOf, startRig, type TestRig } from '../helpers/gateway.js';
import { startRedisServer, uniqueSdkappid, type RedisProcess } from '../helpers/process.js';
import type { BudgetSlot } from '../../src/upstream/budget.js';
/** Takes a slot and ends its call at once (the fastest answer there is); whether one was granted. */
async function endedAtOnce(budget: { acquireSlot(deadline: number): Promise<BudgetSlot | null> }, deadline: number) {
  const slot = await budget.acquireSlot(deadline);
  slot?.ended();
  return slot !== null;
}

const sdkappid = uniqueSdkappid();
const prefix = `tim-tags:{${sdkappid}}`;
let redisServer: RedisProcess;
let emulator: TimEmulator;
let rig: TestRig;

beforeAll(async () => {
  // It persists, so a restart brings back what it held: stale entries included, as after a network blip.
  redisServer = await startRedisServer({ persist: true });
  const secretKey = randomBytes(24).toString('hex');
  emulator = await TimEmulator.start({
    sdkappid,
    secretKey,
    adminIdentifier: ADMIN,
    seed: Array.from({ length: 20 }, (_, i) => ({ To_Account: `o${i}`, Tags: ['old'] })),
  });
  rig = await startRig({
    sharedEmulator: { emulator, secretKey },
    env: {
      TIM_SDKAPPID: String(sdkappid),
      REDIS_URL: redisServer.url,
      TIM_MAX_QPS: '30',
      GATEWAY_REPLICAS: '3',
      TAGS_CACHE_TTL_MS: '600000',
    },
  });
}, 60_000);

afterAll(async () => {
  await rig?.close();
  await emulator?.close();
  await redisServer?.stop();
});

type UserData = { user: { id: string; tags: string[] | null } };
const readUser = (id: string) => rig.query<UserData>('query($id: ID!) { user(id: $id) { id tags } }', { id });

async function readyz(): Promise<{ http: number; status: string; budget: string; cache: string }> {
  const res = await fetch(`${rig.url}/readyz`);
  return { http: res.status, ...((await res.json()) as { status: string; budget: string; cache: string }) };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, withinMs = 15_000): Promise<T> {
  const end = Date.now() + withinMs;
  while (Date.now() < end) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not within ${withinMs} ms: ${what}`);
}

describe('Redis stopped while the gateway serves', () => {
  it('keeps answering on a local budget, says so on /readyz, then goes back to the shared budget and cache', async () => {
    const direct = new Redis(redisServer.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    direct.on('error', () => {});
    try {
      // Redis up: o1 is read once and cached; the call drew on the shared budget.
      expect((await readUser('o1')).data?.user.tags).toEqual(['old']);
      expect(await direct.get(`${prefix}:tags:o1`)).toBe('["old"]');
      expect(await direct.zcard(`${prefix}:budget:im_get_tag`)).toBe(1);
      expect(await readyz()).toMatchObject({
        http: 200,
        budget: expect.stringMatching(/^redis \(30 calls per second/),
      });

      await redisServer.kill();

      // Redis gone: every read is still answered, from the upstream, and a write goes through.
      emulator.resetCalls();
      for (const id of ['o2', 'o3', 'o4', 'o1']) {
        const res = await readUser(id);
        expect(res.errors).toBeUndefined();
        expect(res.data?.user.tags).toEqual(['old']);
      }
      expect(callsOf(emulator)).toHaveLength(4); // o1 too: no cache while Redis is away
      const write = await rig.query<{ addUserTags: Array<{ tags: string[] }> }>(
        'mutation { addUserTags(input: [{ id: "o1", tags: ["new"] }]) { id tags } }',
      );
      expect(write.errors).toBeUndefined();
      expect(write.data?.addUserTags[0]!.tags.sort()).toEqual(['new', 'old']);
      expect(await readyz()).toEqual({
        http: 200,
        status: 'ready',
        budget: 'local fallback (10 calls per second): Redis unreachable',
        cache: 'no shared cache: Redis unreachable',
      });

      // Redis back, with the entry o1 had before the write: the gateway must not serve it.
      await redisServer.restart();
      await until('the budget is shared again', async () =>
        (await readyz()).budget.startsWith('redis') ? true : undefined,
      );
      expect(await direct.get(`${prefix}:tags:o1`)).toBe('["old"]');
      const after = await readUser('o1');
      expect(after.data?.user.tags?.sort()).toEqual(['new', 'old']);

      // The shared budget and cache are in use again.
      expect(await direct.zcard(`${prefix}:budget:im_get_tag`)).toBeGreaterThanOrEqual(1);
      expect(await readyz()).toMatchObject({ http: 200, cache: expect.stringMatching(/^redis /) });
      emulator.resetCalls();
      await readUser('o1');
      expect(callsOf(emulator)).toHaveLength(0);
    } finally {
      direct.disconnect();
    }
  });

  it('falls back at once when Redis stops answering on a live connection, and goes back when it answers again', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const paused = await startRedisServer();
    const budget = await RedisRateBudget.connect({
      url: paused.url,
      sdkappid: uniqueSdkappid(),
      limit: 30,
      replicas: 3,
      log,
    });
    const pauser = new Redis(paused.url);
    try {
      expect(await endedAtOnce(budget, Date.now() + 1000)).toBe(true);
      expect(budget.describe()).toMatch(/^redis /);

      // Redis holds every command for 1.5 s while the connection stays up: only the timeout can tell.
      await pauser.call('CLIENT', 'PAUSE', '1500', 'ALL');
      const asked = Date.now();
      expect(await endedAtOnce(budget, asked + 5000)).toBe(true);
      expect(Date.now() - asked).toBeLessThan(1000);
      expect(budget.describe()).toBe('local fallback (10 calls per second): Redis unreachable');
      expect(budget.limit).toBe(10);

      await until('the budget is back on Redis', async () => {
        await endedAtOnce(budget, Date.now() + 1000);
        return budget.describe().startsWith('redis') ? true : undefined;
      });
      expect(budget.limit).toBe(30);
      expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([
        "Redis unreachable: the rate budget falls back to this process's share, 10 calls per second",
      ]);
      expect(lines.some((l) => l.level === 30 && /Redis answers again/.test(l.msg))).toBe(true);
    } finally {
      pauser.disconnect();
      await budget.close();
      await paused.stop();
    }
  });
});
