/**
 * Automatic persisted queries (Apollo's protocol), through graphql-yoga's APQ
 * plugin: a request whose `extensions.persistedQuery.sha256Hash` the gateway
 * knows may leave out its document; an unknown hash answers
 * PERSISTED_QUERY_NOT_FOUND (HTTP 404) and the client sends the document once
 * with its hash, which the plugin checks (PERSISTED_QUERY_MISMATCH otherwise).
 *
 * The plugin only fills in `params.query`, before parsing: a persisted
 * document is then parsed, limited (limits.ts) and authorised (auth.ts)
 * exactly like one sent in full, on every request.
 *
 * Documents are kept in a bounded LRU in the process and, with REDIS_URL, in
 * Redis too, so every gateway of a fleet knows a hash any of them learned.
 * While Redis is away each process keeps what it learns itself: a miss then
 * only costs the client one more round trip.
 */
import { useAPQ, type APQStore } from '@graphql-yoga/plugin-apq';
import type { Plugin } from 'graphql-yoga';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { RedisLink } from '../upstream/redis.js';

/** Documents one process remembers, and their total size in UTF-16 code units (about bytes for ASCII). */
const MEMORY_MAX_DOCUMENTS = 1000;
const MEMORY_MAX_SIZE = 8 * 1024 * 1024;
/** How long Redis keeps a document; a client whose hash expired sends the document again, once. */
const REDIS_TTL_S = 24 * 60 * 60;

export interface PersistedQueryOptions {
  /** Shared store; unset keeps documents in this process only. */
  redisUrl?: string;
  /** Redis key prefix; default `tim-tags:{sdkappid}` as for the other shared services. */
  keyPrefix: string;
  log: Logger;
}

export interface PersistedQueries {
  plugin: Plugin;
  close(): Promise<void>;
}

export async function createPersistedQueries(opts: PersistedQueryOptions): Promise<PersistedQueries> {
  const memory = new MemoryDocumentStore();
  if (!opts.redisUrl) return { plugin: useAPQ({ store: memory }), close: async () => {} };
  const link = await RedisLink.open({
    url: opts.redisUrl,
    service: 'persisted queries',
    log: opts.log,
    fallback: 'persisted queries are known to this process only',
  });
  const store = new RedisDocumentStore(link, `${opts.keyPrefix}:apq:`, memory);
  return { plugin: useAPQ({ store }), close: () => link.close() };
}

/** A bounded LRU of documents by hash. */
class MemoryDocumentStore implements APQStore {
  private readonly documents = new LRUCache<string, string>({
    max: MEMORY_MAX_DOCUMENTS,
    maxSize: MEMORY_MAX_SIZE,
    sizeCalculation: (document) => Math.max(1, document.length),
  });

  get(hash: string): string | undefined {
    return this.documents.get(hash);
  }

  set(hash: string, document: string): void {
    this.documents.set(hash, document);
  }
}

/** Redis, read through the process's own LRU; never throws: without Redis it is the LRU alone. */
class RedisDocumentStore implements APQStore {
  constructor(
    private readonly link: RedisLink,
    private readonly prefix: string,
    private readonly local: MemoryDocumentStore,
  ) {}

  async get(hash: string): Promise<string | undefined> {
    const known = this.local.get(hash);
    if (known !== undefined) return known;
    const shared = await this.link.run((redis) => redis.get(this.prefix + hash)).catch(() => null);
    if (shared === null) return undefined;
    this.local.set(hash, shared);
    return shared;
  }

  async set(hash: string, document: string): Promise<void> {
    this.local.set(hash, document);
    // The plugin has checked that the document hashes to `hash`, so any gateway may overwrite it with the same.
    await this.link.run((redis) => redis.set(this.prefix + hash, document, 'EX', REDIS_TTL_S)).catch(() => undefined);
  }
}
