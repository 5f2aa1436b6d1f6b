/**
 * The fleet-wide rate budget (REDIS_URL): every gateway process of one app
 * draws on one set of slots in Redis, so together they make at most `limit`
 * calls in any window, whatever their number. It keeps the local budget's
 * rules (src/upstream/budget.ts), with Redis as the one place they are kept:
 *
 * - A call holds its slot from its grant until one window after it ended, so
 *   however late a call arrives at the upstream, no window can hold more than
 *   `limit` arrivals. The slots are a sorted set scored by when each frees: a
 *   call in flight holds a lease (freed by its end, or by the lease running out
 *   if its process died), an ended call frees one window after its end.
 * - Calls are spaced: up to `burst` back to back, then one per window / limit
 *   (GCRA: one key holds when the next call is due), so a fleet under load
 *   spends the budget evenly and each call leaves with a full batch.
 *
 * One Lua script grants atomically on Redis's own clock (`TIME`), so the
 * processes' clocks do not matter. It grants, or says how long until a grant
 * could succeed. Within one process callers wait in a FIFO and only the head
 * asks Redis, sleeping that long between asks (or until a slot of its own
 * process frees), so a crowd of waiting callers costs Redis one request per
 * slot, not one per caller.
 *
 * While Redis is unreachable the process falls back to a local budget of its
 * share, `limit / replicas`, and goes back to Redis when it answers again.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CLOCK_MARGIN_MS, SlidingWindowBudget, WINDOW_MS, type BudgetSlot, type RateBudget } from './budget.js';
import { RedisLink } from './redis.js';
import { wakeableSleep } from './wakeable-sleep.js';
/** How long a call in flight may hold its slot when its process never reports its end (it died). */
const DEFAULT_LEASE_MS = 10_000;

/**
 * KEYS: the slots (sorted set, score = when each frees), the pace (when the next call is due).
 * ARGV: limit, hold (ms from now this grant's slot is held), member, interval (ms), burst, key ttl (ms).
 * Answers 0 when granted, else the ms until a grant could succeed (for a slot in flight, until its lease ends).
 */
const ACQUIRE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local limit = tonumber(ARGV[1])
local interval = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
local wait = 0
if held >= limit then
  local blocking = redis.call('ZRANGE', KEYS[1], held - limit, held - limit, 'WITHSCORES')
  wait = tonumber(blocking[2]) - now
end
local due = tonumber(redis.call('GET', KEYS[2]) or '0')
wait = math.max(wait, due - (burst - 1) * interval - now)
if wait > 0 then
  return math.max(1, math.ceil(wait))
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('SET', KEYS[2], tostring(math.max(due, now) + interval), 'PX', ARGV[6])
return 0
`;

/** KEYS: the slots. ARGV: member, window (ms), key ttl (ms). The call ended: its slot frees one window from now. */
const END_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 0
`;

interface BudgetCommands {
  timTagsAcquireSlot(slots: string, pace: string, ...args: Array<string | number>): Promise<number>;
  timTagsEndSlot(slots: string, member: string, windowMs: number, keyTtlMs: number): Promise<number>;
}

export interface RedisBudgetOptions {
  url: string;
  /** The app whose budget this is: processes of one app share it, other apps have their own. */
  sdkappid: number;
  /** Calls per second for the whole fleet. */
  limit: number;
  /** GATEWAY_REPLICAS: the fallback grants `limit / replicas`. */
  replicas: number;
  log: Logger;
  /** Calls that may go back to back before pacing starts; default a tenth of the limit, as `SlidingWindowBudget.paced`. */
  burst?: number;
  /** Longest a call may hold its slot without reporting its end: longer than any one call (TIM_TIMEOUT_MS). */
  leaseMs?: number;
  /** Default `tim-tags:{sdkappid}`; the braces keep an app's keys in one Redis Cluster slot. */
  keyPrefix?: string;
  /** The upstream command whose budget this is (TIM limits each on its own); its keys carry the name. */
  command?: string;
  commandTimeoutMs?: number;
}

interface Waiter {
  deadline: number;
  resolve(slot: BudgetSlot | null): void;
  done: boolean;
  timer: NodeJS.Timeout;
}

export class RedisRateBudget implements RateBudget {
  /** The budget in force while Redis is away: this process's share of the fleet's limit. */
  readonly fallback: SlidingWindowBudget;
  private readonly slotsKey: string;
  private readonly paceKey: string;
  // Redis stamps the end after the answer came back, so clock rounding is all the margin covers.
  private readonly windowMs = WINDOW_MS + CLOCK_MARGIN_MS;
  private readonly intervalMs: number;
  private readonly burst: number;
  private readonly leaseMs: number;
  private readonly keyTtlMs: number;
  private readonly waiters: Waiter[] = [];
  private readonly memberPrefix = randomBytes(6).toString('hex');
  private grants = 0;
  private pumping = false;
  /** Ends the pump's current sleep early: a slot of this process just freed. */
  private wake: (() => void) | null = null;
  private closed = false;

  /** A budget on a Redis connection of its own, closed with it. */
  static async connect(opts: RedisBudgetOptions): Promise<RedisRateBudget> {
    const link = await RedisLink.open({
      url: opts.url,
      service: 'rate budget',
      log: opts.log,
      fallback: `the rate budget falls back to this process's share, ${shareOf(opts)} calls per second`,
      commandTimeoutMs: opts.commandTimeoutMs,
    });
    return new RedisRateBudget(opts, link, true);
  }

  /** A budget on a connection it shares with others (one per command); the link's owner closes it. */
  static onLink(opts: RedisBudgetOptions, link: RedisLink): RedisRateBudget {
    return new RedisRateBudget(opts, link, false);
  }

  private constructor(
    private readonly opts: RedisBudgetOptions,
    private readonly link: RedisLink,
    private readonly ownsLink: boolean,
  ) {
    if (!Number.isInteger(opts.limit) || opts.limit < 1)
      throw new RangeError(`budget limit must be a positive integer, got ${opts.limit}`);
    const prefix = opts.keyPrefix ?? `tim-tags:{${opts.sdkappid}}`;
    const name = opts.command ? `budget:${opts.command}` : 'budget';
    this.slotsKey = `${prefix}:${name}`;
    this.paceKey = `${prefix}:${name}:pace`;
    this.intervalMs = this.windowMs / opts.limit;
    this.burst = opts.burst ?? Math.ceil(opts.limit / 10);
    this.leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    this.keyTtlMs = Math.ceil(this.leaseMs + this.windowMs);
    this.fallback = SlidingWindowBudget.paced(shareOf(opts));
    link.redis.defineCommand('timTagsAcquireSlot', { numberOfKeys: 2, lua: ACQUIRE_SCRIPT });
    link.redis.defineCommand('timTagsEndSlot', { numberOfKeys: 1, lua: END_SCRIPT });
  }

  /** The budget in force now: the fleet's limit, or this process's share while Redis is away. */
  get limit(): number {
    return this.link.problem ? this.fallback.limit : this.opts.limit;
  }

  /** This process's share of the fleet's limit, as the fallback grants it. */
  get share(): number {
    return this.fallback.limit;
  }

  acquireSlot(deadline: number): Promise<BudgetSlot | null> {
    return this.take(deadline);
  }

  describe(): string {
    const problem = this.link.problem;
    if (problem) return `local fallback (${this.fallback.limit} calls per second): ${problem}`;
    return `redis (${this.opts.limit} calls per second, shared by every gateway of the app)`;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.resolve(null);
    this.wake?.();
    await this.fallback.close();
    if (this.ownsLink) await this.link.close();
  }

  private take(deadline: number): Promise<BudgetSlot | null> {
    if (this.closed || Date.now() > deadline) return Promise.resolve(null);
    if (!this.link.usable && this.waiters.length === 0) return this.fallback.acquireSlot(deadline);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        deadline,
        done: false,
        resolve: (slot) => {
          if (waiter.done) {
            slot?.unused();
            return;
          }
          waiter.done = true;
          clearTimeout(waiter.timer);
          resolve(slot);
        },
        // A caller behind a slow queue gives up at its own deadline, not the head's.
        timer: setTimeout(() => waiter.resolve(null), Math.min(Math.max(0, deadline - Date.now()), MAX_TIMER_MS)),
      };
      this.waiters.push(waiter);
      void this.pump();
    });
  }

  /** Serves the FIFO head by head until it is empty; one pump runs at a time. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (let head = this.nextWaiter(); head; head = this.nextWaiter()) {
        if (!this.link.usable) {
          this.handOverToFallback();
          break;
        }
        const member = `${this.memberPrefix}:${++this.grants}`;
        let wait: number;
        try {
          wait = await this.askRedis(member, this.leaseMs);
        } catch {
          continue; // the link is now in an outage: the next turn hands the queue to the fallback
        }
        if (wait === 0) {
          this.waiters.shift();
          head.resolve(this.slot(member));
          continue;
        }
        // A slot in flight frees a window after its call ends at the soonest, so wait no longer
        // than that before asking again; nobody in the queue is served before the head.
        const soonest = Math.min(wait, this.windowMs);
        const from = Date.now() + soonest;
        for (const w of this.waiters) if (w.deadline < from) w.resolve(null);
        if (!head.done) await this.sleep(soonest);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The first waiter still waiting, dropping those that gave up. */
  private nextWaiter(): Waiter | undefined {
    while (this.waiters.length > 0 && this.waiters[0]!.done) this.waiters.shift();
    return this.waiters[0];
  }

  private askRedis(member: string, holdMs: number): Promise<number> {
    const args = [this.opts.limit, holdMs, member, this.intervalMs, this.burst, this.keyTtlMs];
    return this.link.run((redis) => commands(redis).timTagsAcquireSlot(this.slotsKey, this.paceKey, ...args));
  }

  /** The slot granted as `member`: its end, or that it went unused, is told to Redis. */
  private slot(member: string): BudgetSlot {
    let over = false;
    const finish = (command: (redis: Redis) => Promise<unknown>) => {
      if (over) return;
      over = true;
      // When Redis cannot be told, the lease frees the slot later: never sooner than it should.
      if (this.link.usable) void this.link.run(command).catch(() => {});
      this.wake?.();
    };
    return {
      ended: () =>
        finish((redis) => commands(redis).timTagsEndSlot(this.slotsKey, member, this.windowMs, this.keyTtlMs)),
      unused: () => finish((redis) => redis.zrem(this.slotsKey, member)),
    };
  }

  /** Redis is away: everyone waiting takes a slot of the local share instead, in the same order. */
  private handOverToFallback(): void {
    for (const w of this.waiters.splice(0)) {
      if (w.done) continue;
      void this.fallback.acquireSlot(w.deadline).then(w.resolve);
    }
  }

  private sleep(ms: number): Promise<void> {
    return wakeableSleep(ms, (wake) => (this.wake = wake));
  }
}

/** setTimeout's longest delay; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** This process's share of the fleet's limit, for the fallback. */
function shareOf(opts: RedisBudgetOptions): number {
  return Math.max(1, Math.floor(opts.limit / Math.max(1, opts.replicas)));
}

function commands(redis: unknown): BudgetCommands {
  return redis as BudgetCommands;
}
