/** Issue 5: the fleet-wide rate budget's Lua script, with several clients in one process against the real Redis. */
import pino, { type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisRateBudget, type RedisBudgetOptions } from '../../src/upstream/redis-budget.js';
import { mostInWindow } from '../../src/emulator/index.js';
import { dropRedisKeys, freePort, uniqueSdkappid } from '../helpers/process.js';
import type { BudgetSlot } from '../../src/upstream/budget.js';
import { redisBudgets } from '../../src/upstream/budgets.js';

/** Takes a slot and ends its call at once (the fastest answer there is); whether one was granted. */
async function endedAtOnce(budget: { acquireSlot(deadline: number): Promise<BudgetSlot | null> }, deadline: number) {
  const slot = await budget.acquireSlot(deadline);
  slot?.ended();
  return slot !== null;
}

const REDIS_URL = 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A logger whose lines the test can read. */
function recordingLogger(): { log: Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { log, lines };
}

/**
 * The most calls an adversarial network could make arrive in one upstream window: each call may
 * arrive anywhere between its grant and its end, so the window starting at `t` can hold every call
 * granted before `t + 1000` that had not ended before `t`.
 */
function worstWindow(calls: Array<{ granted: number; ended: number }>): number {
  let most = 0;
  for (const t of calls.map((c) => c.ended)) {
    most = Math.max(most, calls.filter((c) => c.granted < t + 1000 && c.ended >= t).length);
  }
  return most;
}

const opened: RedisRateBudget[] = [];
const apps: number[] = [];

async function budget(opts: Partial<RedisBudgetOptions> & { sdkappid: number; limit: number }) {
  const b = await RedisRateBudget.connect({ url: REDIS_URL, replicas: 1, log: recordingLogger().log, ...opts });
  opened.push(b);
  apps.push(opts.sdkappid);
  return b;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((b) => b.close()));
  await Promise.all(apps.splice(0).map((app) => dropRedisKeys(REDIS_URL, `tim-tags:{${app}}:*`)));
});

describe('RedisRateBudget against a real Redis', () => {
  it('holds each slot until a window after its call ended: four clients, calls of any length, never more than `limit` arrivals in a window', async () => {
    const sdkappid = uniqueSdkappid();
    const limit = 10;
    const clients = await Promise.all([1, 2, 3, 4].map(() => budget({ sdkappid, limit, burst: limit })));
    const deadline = Date.now() + 2500;
    const calls: Array<{ granted: number; ended: number }> = [];
    await Promise.all(
      clients.flatMap((client) =>
        [1, 2, 3].map(async () => {
          for (;;) {
            const slot = await client.acquireSlot(deadline);
            if (!slot) return;
            const granted = Date.now();
            await sleep(Math.random() * 300); // the call, however long it takes
            calls.push({ granted, ended: Date.now() });
            slot.ended();
          }
        }),
      ),
    );
    expect(worstWindow(calls)).toBeLessThanOrEqual(limit);
    // The first round, then a second a window after the first calls ended: the slots free again.
    expect(calls.length).toBeGreaterThanOrEqual(limit + 1);
    expect(calls.length).toBeLessThanOrEqual(3 * limit);
  });

  it('grants at most `limit` in any sliding second to callers whose calls end at once, and keeps granting', async () => {
    const sdkappid = uniqueSdkappid();
    const limit = 10;
    const clients = await Promise.all([1, 2, 3, 4].map(() => budget({ sdkappid, limit, burst: limit })));
    const deadline = Date.now() + 2300;
    const granted: number[] = [];
    const outcomes = await Promise.all(
      clients.flatMap((client) =>
        Array.from({ length: 30 }, async () => {
          const ok = await endedAtOnce(client, deadline);
          if (ok) granted.push(Date.now());
          return Date.now();
        }),
      ),
    );
    expect(mostInWindow(granted, 1000)).toBeLessThanOrEqual(limit);
    expect(granted.length).toBeGreaterThanOrEqual(2 * limit);
    expect(granted.length).toBeLessThanOrEqual(3 * limit);
    // Nobody waits past their deadline (a little slack for a busy machine).
    for (const at of outcomes) expect(at).toBeLessThan(deadline + 500);
  });

  it('spaces calls fleet-wide after a burst of a tenth of the limit', async () => {
    const sdkappid = uniqueSdkappid();
    const [one, other] = await Promise.all([budget({ sdkappid, limit: 20 }), budget({ sdkappid, limit: 20 })]);
    const started = Date.now();
    const deadline = started + 5000;
    const results = await Promise.all(
      [1, 2, 3].flatMap(() => [endedAtOnce(one!, deadline), endedAtOnce(other!, deadline)]),
    );
    expect(results.every(Boolean)).toBe(true);
    // Two back to back, then one per 50 ms: the sixth leaves about 200 ms after the first.
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('two apps on one Redis have budgets of their own', async () => {
    const a = await budget({ sdkappid: uniqueSdkappid(), limit: 3, burst: 3 });
    const b = await budget({ sdkappid: uniqueSdkappid(), limit: 3, burst: 3 });
    const soon = Date.now() + 100;
    const results = await Promise.all([...Array(4)].flatMap(() => [endedAtOnce(a, soon), endedAtOnce(b, soon)]));
    expect(results.filter(Boolean)).toHaveLength(6);
  });

  it('resolves null at once when the next slot comes after the deadline', async () => {
    const b = await budget({ sdkappid: uniqueSdkappid(), limit: 2, burst: 2 });
    expect(await b.acquireSlot(Date.now() + 5000)).not.toBeNull();
    expect(await endedAtOnce(b, Date.now() + 5000)).toBe(true);
    const asked = Date.now();
    expect(await b.acquireSlot(asked + 300)).toBeNull();
    expect(Date.now() - asked).toBeLessThan(250);
  });

  it('a slot frees a window after its call ended, and at once when it went unused', async () => {
    const sdkappid = uniqueSdkappid();
    const [one, other] = await Promise.all([
      budget({ sdkappid, limit: 2, burst: 2 }),
      budget({ sdkappid, limit: 2, burst: 2 }),
    ]);
    const first = (await one!.acquireSlot(Date.now() + 1000))!;
    const second = (await one!.acquireSlot(Date.now() + 1000))!;
    expect(second).not.toBeNull();
    // Another process waits while both calls are in flight, held however long they take.
    const waiting = other!.acquireSlot(Date.now() + 5000);
    await sleep(300);
    first.ended();
    const endedAt = Date.now();
    expect(await waiting).not.toBeNull();
    expect(Date.now() - endedAt).toBeGreaterThanOrEqual(950);
    expect(Date.now() - endedAt).toBeLessThan(3000);

    // Full again; a slot that went unused frees at once, and the process's own waiter hears of it.
    const third = one!.acquireSlot(Date.now() + 5000);
    await sleep(50);
    second.unused();
    const unusedAt = Date.now();
    expect(await third).not.toBeNull();
    expect(Date.now() - unusedAt).toBeLessThan(500);
  });

  it('frees the slot of a process that died mid-call when its lease runs out', async () => {
    const sdkappid = uniqueSdkappid();
    const dying = await budget({ sdkappid, limit: 1, burst: 1, leaseMs: 1500 });
    const survivor = await budget({ sdkappid, limit: 1, burst: 1, leaseMs: 1500 });
    expect(await dying.acquireSlot(Date.now() + 1000)).not.toBeNull();
    await dying.close(); // never reports the end
    const asked = Date.now();
    expect(await survivor.acquireSlot(asked + 5000)).not.toBeNull();
    expect(Date.now() - asked).toBeGreaterThanOrEqual(1200);
    expect(Date.now() - asked).toBeLessThan(4000);
  });

  it("reports itself as shared while Redis answers, with this process's share for the lookup queue's pace", async () => {
    const b = await budget({ sdkappid: uniqueSdkappid(), limit: 100, replicas: 3 });
    expect(b.limit).toBe(100);
    expect(b.share).toBe(33);
    expect(b.describe()).toMatch(/^redis \(100 calls per second/);
  });
});

describe('RedisRateBudget without Redis', () => {
  it('falls back to its share of the limit, says so once in the log, and still grants', async () => {
    const { log, lines } = recordingLogger();
    const b = await RedisRateBudget.connect({
      url: `redis://127.0.0.1:${await freePort()}`,
      sdkappid: uniqueSdkappid(),
      limit: 100,
      replicas: 3,
      log,
    });
    opened.push(b);
    expect(b.limit).toBe(33);
    expect(b.describe()).toBe('local fallback (33 calls per second): Redis unreachable');
    const soon = Date.now() + 1000;
    const results = await Promise.all([...Array(40)].map(() => endedAtOnce(b, soon)));
    expect(results.filter(Boolean).length).toBeGreaterThanOrEqual(1);
    expect(results.filter(Boolean).length).toBeLessThanOrEqual(33);
    expect(await b.acquireSlot(Date.now() + 1000)).not.toBeNull();
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toMatch(
      /Redis unreachable: the rate budget falls back to this process's share, 33 calls per second/,
    );
  });

  it('gives every replica at least one call per second', async () => {
    const b = await RedisRateBudget.connect({
      url: `redis://127.0.0.1:${await freePort()}`,
      sdkappid: uniqueSdkappid(),
      limit: 2,
      replicas: 5,
      log: recordingLogger().log,
    });
    opened.push(b);
    expect(b.limit).toBe(1);
  });
});

describe('redisBudgets: one fleet budget per command', () => {
  it('keys each command on its own, so one command spent leaves the others whole', async () => {
    const sdkappid = uniqueSdkappid();
    apps.push(sdkappid);
    const gateways = await Promise.all(
      [1, 2].map(() =>
        redisBudgets({ url: REDIS_URL, sdkappid, limit: 3, replicas: 1, burst: 3, log: recordingLogger().log }),
      ),
    );
    try {
      const soon = Date.now() + 300;
      // Two gateways share im_get_tag's three slots between them...
      const tags = await Promise.all(
        gateways.flatMap((g) => [1, 2].map(() => endedAtOnce(g.forCommand('im_get_tag'), soon))),
      );
      expect(tags.filter(Boolean)).toHaveLength(3);
      // ...and im_get_attr and im_add_tag still have all of theirs.
      for (const command of ['im_get_attr', 'im_add_tag'] as const) {
        const granted = await Promise.all(
          gateways.flatMap((g) => [1, 2].map(() => endedAtOnce(g.forCommand(command), soon))),
        );
        expect(granted.filter(Boolean)).toHaveLength(3);
      }
      expect(gateways[0]!.forCommand('im_get_tag')).toBe(gateways[0]!.forCommand('im_get_tag'));
      expect(gateways[0]!.describe()).toMatch(/^redis \(3 calls per second/);
    } finally {
      for (const g of gateways) await g.close();
    }
  });
});
