/**
 * The upstream layer as the schema sees it, and the one place it is wired:
 * one attempt loop for every call (src/upstream/attempt.ts), a cached,
 * batched read per lookup command (reads.ts over lookup-queue.ts), the app's
 * attribute names (attribute-names.ts) and the writes (writes.ts).
 */
import type { Logger } from 'pino';
import { readGetAttrAnswer } from '../tim/attributes.js';
import type { TimClient } from '../tim/client.js';
import { readGetTagAnswer } from '../tim/tags.js';
import type { Attrs } from '../tim/wire.js';
import { AttemptLoop, type AttemptEvents } from './attempt.js';
import { AttributeNames } from './attribute-names.js';
import type { Budgets } from './budgets.js';
import type { AccountCache } from './cache.js';
import type { Circuit } from './circuit.js';
import type { Lookup } from './lookup-queue.js';
import { AccountReads } from './reads.js';
import type { RetryPolicy } from './retry.js';
import type { UpstreamTracer } from './trace.js';
import { Writes } from './writes.js';

/** Hooks for metrics; every one optional. */
export interface UpstreamEvents extends AttemptEvents {
  cache?(hits: number, misses: number): void;
}

export interface UpstreamOptions {
  client: TimClient;
  budgets: Budgets;
  log: Logger;
  tagCache?: AccountCache<string[]>;
  attributeCache?: AccountCache<Attrs>;
  /** Off: each request's batches are sent as they are (the per-request DataLoader baseline, for the bench). */
  coalesce?: boolean;
  retry?: RetryPolicy;
  circuit?: Circuit;
  events?: UpstreamEvents;
  /** A span per call attempt (tracing off: none). */
  tracer?: UpstreamTracer;
}

export class Upstream {
  readonly attempts: AttemptLoop;
  /** Users' tags, by im_get_tag. */
  readonly tags: AccountReads<'im_get_tag', string[]>;
  /** Users' attributes, by im_get_attr. */
  readonly attributes: AccountReads<'im_get_attr', Attrs>;
  readonly attributeNames: AttributeNames;
  readonly writes: Writes;

  constructor(opts: UpstreamOptions) {
    const { log, coalesce, events } = opts;
    this.attempts = new AttemptLoop({ ...opts, events });
    const attempts = this.attempts;
    this.tags = new AccountReads<'im_get_tag', string[]>({
      command: 'im_get_tag',
      attempts,
      read: (accounts, answer) =>
        byAccount(readGetTagAnswer(accounts, answer), (r) => ('tags' in r ? r.tags : r.error)),
      cache: opts.tagCache,
      coalesce,
      log,
      events,
    });
    this.attributes = new AccountReads<'im_get_attr', Attrs>({
      command: 'im_get_attr',
      attempts,
      read: readGetAttrAnswer,
      cache: opts.attributeCache,
      coalesce,
      log,
      events,
    });
    this.attributeNames = new AttributeNames(attempts);
    this.writes = new Writes({
      attempts,
      tags: this.tags,
      attributes: this.attributes,
      attributeNames: this.attributeNames,
    });
  }

  get circuit(): Circuit {
    return this.attempts.circuit;
  }

  /** Whether the upstream is thought usable (for /readyz). */
  get ready(): boolean {
    return this.circuit.state !== 'open';
  }

  /** Distinct accounts waiting in the lookup queues for a call. */
  get queuedAccounts(): number {
    return this.tags.queue.queuedAccounts + this.attributes.queue.queuedAccounts;
  }
}

function byAccount<R, V>(read: Map<string, R>, pick: (r: R) => Lookup<V>): Map<string, Lookup<V>> {
  const out = new Map<string, Lookup<V>>();
  read.forEach((r, account) => out.set(account, pick(r)));
  return out;
}
