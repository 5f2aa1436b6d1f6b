/**
 * Push pacing: two pushes of one app must arrive at TIM more than a second
 * apart (90024 otherwise). A push holds the turn from when it leaves until its
 * answer is back, and the next may leave only one spacing after that: the
 * first arrived before its answer came back and the next arrives after it
 * left, so no network delay can bring two arrivals closer than the spacing.
 * Within a process pushes wait their turn in order; with REDIS_URL the turn is
 * also one key per app in Redis (an atomic script on Redis's clock), so the
 * whole fleet keeps the spacing.
 */
import type { Logger } from 'pino';
import { PUSH_SPACING_MS } from '../tim/push.js';
import { RedisLink } from './redis.js';

/** Room for clock rounding on top of the spacing. */
const SPACING_MARGIN_MS = 20;

/** The right to send one push; report its end once the answer is back (or it was never sent). */
export interface PushTurn {
  ended(): void;
}

export interface PushPacer {
  /** Waits for this push's turn; null (never a throw) when it cannot come before `deadline`. */
  turn(deadline: number): Promise<PushTurn | null>;
  describe(): string;
  close?(): Promise<void>;
}

export class LocalPushPacer implements PushPacer {
  private tail: Promise<void> = Promise.resolve();
  private freeAt = 0;

  constructor(private readonly spacingMs = PUSH_SPACING_MS + SPACING_MARGIN_MS) {}

  async turn(deadline: number): Promise<PushTurn | null> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise((resolve) => (release = resolve));
    const ready = await Promise.race([previous.then(() => true), sleep(deadline - Date.now()).then(() => false)]);
    if (!ready) {
      // Gave up: the turn passes on once the push before it is done.
      void previous.then(release);
      return null;
    }
    const wait = this.freeAt - Date.now();
    if (Date.now() + wait > deadline) {
      release();
      return null;
    }
    if (wait > 0) await sleep(wait);
    let over = false;
    return {
      ended: () => {
        if (over) return;
        over = true;
        this.freeAt = Date.now() + this.spacingMs;
        release();
      },
    };
  }

  describe(): string {
    return 'local (one push per second)';
  }
}

/**
 * KEYS: the app's push turn. ARGV: member, lease (ms). The value is
 * "until|holder": a push in flight holds it until its lease runs out (its
 * process died) or its end; an ended push leaves "end + spacing|".
 * Answers 0 when this member now holds the turn, else the ms to wait.
 */
const TAKE_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('GET', KEYS[1])
if v then
  local untilAt = tonumber(string.match(v, '^(%d+)'))
  if untilAt and untilAt > now then return math.max(1, untilAt - now) end
end
redis.call('SET', KEYS[1], tostring(now + tonumber(ARGV[2])) .. '|' .. ARGV[1], 'PX', tonumber(ARGV[2]) + 60000)
return 0
`;

/** KEYS: the turn. ARGV: member, spacing (ms). Frees the turn one spacing from now, if this member holds it. */
const END_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '|(.*)$') == ARGV[1] then
  redis.call('SET', KEYS[1], tostring(now + tonumber(ARGV[2])) .. '|', 'PX', tonumber(ARGV[2]) + 60000)
end
return 0
`;

interface PacerCommands {
  timTagsTakePushTurn(key: string, member: string, leaseMs: number): Promise<number>;
  timTagsEndPushTurn(key: string, member: string, spacingMs: number): Promise<number>;
}

export interface RedisPushPacerOptions {
  url: string;
  sdkappid: number;
  log: Logger;
  /** Longest a push may hold the turn without reporting its end: over one call's time limit. */
  leaseMs: number;
  keyPrefix?: string;
}

export class RedisPushPacer implements PushPacer {
  private readonly local: LocalPushPacer;
  private readonly key: string;
  private readonly spacingMs = PUSH_SPACING_MS + SPACING_MARGIN_MS;
  private turns = 0;
  private readonly memberPrefix = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

  static async connect(opts: RedisPushPacerOptions): Promise<RedisPushPacer> {
    const link = await RedisLink.open({
      url: opts.url,
      service: 'push pacing',
      log: opts.log,
      fallback: 'pushes are spaced within this process only',
    });
    return new RedisPushPacer(opts, link);
  }

  private constructor(
    private readonly opts: RedisPushPacerOptions,
    private readonly link: RedisLink,
  ) {
    this.local = new LocalPushPacer(this.spacingMs);
    this.key = `${opts.keyPrefix ?? `tim-tags:{${opts.sdkappid}}`}:push:turn`;
    link.redis.defineCommand('timTagsTakePushTurn', { numberOfKeys: 1, lua: TAKE_SCRIPT });
    link.redis.defineCommand('timTagsEndPushTurn', { numberOfKeys: 1, lua: END_SCRIPT });
  }

  async turn(deadline: number): Promise<PushTurn | null> {
    const local = await this.local.turn(deadline);
    if (!local) return null;
    const member = `${this.memberPrefix}:${++this.turns}`;
    for (;;) {
      let wait: number;
      try {
        wait = await this.link.run((r) => commands(r).timTagsTakePushTurn(this.key, member, this.opts.leaseMs));
      } catch {
        // Redis is away (the link logs it once): this process's own spacing still holds.
        return local;
      }
      if (wait === 0) break;
      if (Date.now() + wait > deadline) {
        local.ended();
        return null;
      }
      await sleep(wait);
    }
    let over = false;
    return {
      ended: () => {
        if (over) return;
        over = true;
        local.ended();
        void this.link.run((r) => commands(r).timTagsEndPushTurn(this.key, member, this.spacingMs)).catch(() => {});
      },
    };
  }

  describe(): string {
    const problem = this.link.problem;
    return problem ? `local fallback: ${problem}` : 'redis (one push per second for every gateway of the app)';
  }

  close(): Promise<void> {
    return this.link.close();
  }
}

function commands(redis: unknown): PacerCommands {
  return redis as PacerCommands;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
