/**
 * One Redis connection for one shared service (the rate budget or the tag
 * cache), and whether Redis can be counted on right now.
 *
 * The gateway must keep serving while Redis is away, so the connection fails
 * fast instead of queueing: no offline queue, no per-command retries, and a
 * short command timeout. A failed command or a lost connection starts an
 * outage: the service says so once in the log and falls back. The outage ends
 * when the connection is ready again (ioredis reconnects by itself) or, after a
 * command timed out on a live connection, when a later probe answers.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** How long one command may take before Redis counts as unreachable. */
export const COMMAND_TIMEOUT_MS = 200;
/** After a timeout on a live connection, how long to wait before asking Redis again. */
const PROBE_AFTER_MS = 1000;
/** How long a starting gateway waits for its first connection before it starts on the fallback. */
const FIRST_CONNECT_MS = 1000;

/** Thrown without asking Redis when it is known to be away. */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
}

export interface RedisLinkOptions {
  url: string;
  /** Which service this connection serves, for the logs and `CLIENT LIST`. */
  service: string;
  log: Logger;
  /** What the service does while Redis is away; logged once per outage. */
  fallback: string;
  commandTimeoutMs?: number;
}

export class RedisLink {
  readonly redis: Redis;
  /** Why Redis is not used right now; null while it answers. */
  private outage: string | null = null;
  /** While in an outage on a live connection: when a command may try Redis again. */
  private probeAt = 0;
  private closed = false;
  private readonly timeoutMs: number;

  /**
   * Connects and waits briefly for the first answer; when the connection
   * fails or is slow, starts in an outage (Redis may come later).
   */
  static async open(opts: RedisLinkOptions): Promise<RedisLink> {
    // Loaded on first use: a gateway without REDIS_URL never pays ioredis's memory.
    const { Redis } = await import('ioredis');
    const link = new RedisLink(opts, Redis);
    const ready = await new Promise<boolean>((resolve) => {
      const settle = (ok: boolean) => {
        clearTimeout(timer);
        link.redis.off('ready', onReady);
        link.redis.off('error', onError);
        resolve(ok);
      };
      const onReady = () => settle(true);
      const onError = () => settle(false);
      const timer = setTimeout(onError, FIRST_CONNECT_MS);
      link.redis.once('ready', onReady);
      link.redis.once('error', onError);
    });
    if (!ready) link.startOutage('Redis unreachable');
    return link;
  }

  private constructor(
    private readonly opts: RedisLinkOptions,
    RedisClient: typeof Redis,
  ) {
    this.timeoutMs = opts.commandTimeoutMs ?? COMMAND_TIMEOUT_MS;
    this.redis = new RedisClient(opts.url, {
      connectionName: `tim-tags:${opts.service.replace(/\W+/g, '-')}`,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 1000,
      // Keep trying for as long as the gateway runs, at most a second apart.
      retryStrategy: (times) => Math.min(100 * times, 1000),
    });
    // ioredis prints unhandled 'error' events to the console; the outage carries the news instead.
    this.redis.on('error', (err: Error) =>
      opts.log.debug({ redis: opts.service, err: err.message }, 'redis connection error'),
    );
    this.redis.on('close', () => {
      if (!this.closed) this.startOutage('Redis unreachable');
    });
    this.redis.on('ready', () => this.endOutage());
  }

  /** Why Redis is not in use now, or null when it is. */
  get problem(): string | null {
    return this.outage;
  }

  /** Whether a command may be sent now: connected, and not waiting out a timeout. */
  get usable(): boolean {
    if (this.closed || this.redis.status !== 'ready') return false;
    return this.outage === null || Date.now() >= this.probeAt;
  }

  /**
   * Runs `command` against Redis, or throws RedisUnavailableError at once when
   * Redis is known to be away. A failure of Redis itself starts an outage;
   * an answer ends one.
   */
  async run<T>(command: (redis: Redis) => Promise<T>): Promise<T> {
    if (!this.usable) throw new RedisUnavailableError(this.outage ?? 'Redis is not connected');
    try {
      const result = await withTimeout(command(this.redis), this.timeoutMs);
      this.endOutage();
      return result;
    } catch (err) {
      // Any failure, even an error reply, falls back: the gateway serves without Redis rather than not at all.
      const detail = (err as Error).message;
      this.startOutage('Redis unreachable', detail);
      this.probeAt = Date.now() + PROBE_AFTER_MS;
      throw new RedisUnavailableError(`Redis unreachable: ${detail}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // QUIT when connected, so Redis sees a clean goodbye; otherwise stop reconnecting at once. A Redis
    // that stopped answering on a live connection never answers QUIT either: cut it after the command timeout.
    if (this.redis.status === 'ready')
      await withTimeout(this.redis.quit(), this.timeoutMs).catch(() => this.redis.disconnect());
    else this.redis.disconnect();
  }

  private startOutage(reason: string, detail?: string): void {
    if (this.closed || this.outage !== null) return;
    this.outage = reason;
    this.opts.log.warn({ redis: this.opts.service, detail }, `${reason}: ${this.opts.fallback}`);
  }

  private endOutage(): void {
    if (this.outage === null) return;
    this.outage = null;
    this.probeAt = 0;
    this.opts.log.info(
      { redis: this.opts.service },
      `Redis answers again: the ${this.opts.service} is shared once more`,
    );
  }
}

/**
 * `promise`, or a rejection when it has not settled `ms` after the call. Not
 * ioredis's own commandTimeout: on a busy event loop a timer can fire before
 * the loop reads a reply that came in time, and every such false alarm would
 * send the process to its fallback budget. So when the timer fires, the
 * verdict waits for the next check phase, after the loop has polled its
 * sockets: a reply already there settles first.
 */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => setImmediate(() => reject(new Error(`no answer within ${ms} ms`))), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** Redis's clock (`TIME` answers seconds and microseconds) in epoch milliseconds. */
export function redisTimeMs([seconds, micros]: ReadonlyArray<string | number>): number {
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}
