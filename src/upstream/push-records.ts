/**
 * The idempotency record: which TaskId a push with a given idempotencyKey got,
 * kept 7 days so that the key answers it again without a second push. In
 * memory (bounded) always; with REDIS_URL also in Redis, so that every gateway
 * of the fleet knows it. Never throws: a Redis that is away leaves the memory.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { PUSH_DEDUP_MS } from '../tim/push.js';
import { RedisLink } from './redis.js';

export interface PushRecords {
  /** The TaskId a successful push with this key got within 7 days, or null. */
  taskOf(key: string): Promise<string | null>;
  remember(key: string, taskId: string): Promise<void>;
  describe(): string;
  close?(): Promise<void>;
}

/** Keys remembered in one process's memory. */
const MEMORY_KEYS = 100_000;

export class MemoryPushRecords implements PushRecords {
  private readonly tasks = new LRUCache<string, string>({ max: MEMORY_KEYS, ttl: PUSH_DEDUP_MS });

  taskOf(key: string): Promise<string | null> {
    return Promise.resolve(this.tasks.get(key) ?? null);
  }

  remember(key: string, taskId: string): Promise<void> {
    this.tasks.set(key, taskId);
    return Promise.resolve();
  }

  describe(): string {
    return 'memory';
  }
}

export class RedisPushRecords implements PushRecords {
  private readonly memory = new MemoryPushRecords();

  static async connect(opts: { url: string; sdkappid: number; log: Logger }): Promise<RedisPushRecords> {
    const link = await RedisLink.open({
      url: opts.url,
      service: 'push records',
      log: opts.log,
      fallback: 'idempotency keys are remembered by this process only',
    });
    return new RedisPushRecords(link, `tim-tags:{${opts.sdkappid}}:push:key:`);
  }

  private constructor(
    private readonly link: RedisLink,
    private readonly prefix: string,
  ) {}

  async taskOf(key: string): Promise<string | null> {
    const local = await this.memory.taskOf(key);
    if (local) return local;
    try {
      return await this.link.run((r) => r.get(this.redisKey(key)));
    } catch {
      return null;
    }
  }

  async remember(key: string, taskId: string): Promise<void> {
    await this.memory.remember(key, taskId);
    try {
      await this.link.run((r) => r.set(this.redisKey(key), taskId, 'PX', PUSH_DEDUP_MS));
    } catch {
      // logged once by the link; this process still knows the key
    }
  }

  describe(): string {
    return this.link.problem ? `memory: ${this.link.problem}` : 'redis';
  }

  close(): Promise<void> {
    return this.link.close();
  }

  /** Hashed: a key is the caller's text, of any characters. */
  private redisKey(key: string): string {
    return this.prefix + createHash('sha256').update(key, 'utf8').digest('hex');
  }
}
