/** What every resolver gets: per-request loaders over the shared services. */
import DataLoader from 'dataloader';
import type { Config } from '../config.js';
import type { Logger } from 'pino';
import { MAX_ACCOUNTS_PER_CALL, type Attrs } from '../tim/wire.js';
import type { PushSender } from '../upstream/push.js';
import type { AccountReads } from '../upstream/reads.js';
import type { RequestTrace } from '../upstream/trace.js';
import type { Upstream } from '../upstream/upstream.js';
import { badInput, toGraphQLError } from './errors.js';
import { RequestIds } from './ids.js';

/** Long-lived services shared by every request of one gateway. */
export interface Services {
  config: Config;
  upstream: Upstream;
  push: PushSender;
  log: Logger;
}

/** The caller, as the auth plugin found it; null when auth is off. */
export interface Caller {
  sub: string;
  scopes: Set<string>;
}

export interface GatewayContext {
  services: Services;
  /** The request's `User.tags` loader: every lookup of the request, deduplicated, in batches of at most 100. */
  tags: RequestLoader<string[]>;
  /** The request's `User.attributes` / `User.attribute` loader: one im_get_attr lookup per user, batched the same way. */
  attributes: RequestLoader<Attrs>;
  /** The ids this request asks for: checked and counted before any lookup. */
  ids: RequestIds;
  /** Epoch ms by which upstream work for this request must be done. */
  deadline: number;
  caller: Caller | null;
  /** The request's span, which its upstream calls continue (tracing off: undefined). */
  trace: RequestTrace;
}

export function createContext(
  services: Services,
  caller: Caller | null = null,
  trace: RequestTrace = undefined,
): GatewayContext {
  const deadline = Date.now() + services.config.requestTimeoutMs;
  const ids = new RequestIds(services.config.maxIdsPerRequest);
  const request: LoaderRequest = { ids, deadline, trace };
  const tags = new RequestLoader(services.upstream.tags, request);
  const attributes = new RequestLoader(services.upstream.attributes, request);
  return { services, tags, attributes, ids, deadline, caller, trace };
}

/** What a request's loaders need of it. */
interface LoaderRequest {
  ids: RequestIds;
  deadline: number;
  trace: RequestTrace;
}

/**
 * A request's loader over one read command: refused as a whole when the request's ids are bad,
 * else batched and shared. Its DataLoader is made on the first lookup: most requests read only
 * one of the two commands, and a loader held while the request waits for its call is memory
 * every young-generation collection copies.
 */
export class RequestLoader<V> {
  private loader: DataLoader<string, V> | null = null;

  constructor(
    private readonly reads: AccountReads<'im_get_tag' | 'im_get_attr', V>,
    private readonly request: LoaderRequest,
  ) {}

  load(account: string): Promise<V> {
    this.loader ??= new DataLoader<string, V>((accounts) => this.batch(accounts), {
      maxBatchSize: MAX_ACCOUNTS_PER_CALL,
    });
    return this.loader.load(account);
  }

  /** Forgets an account's value (a write of this request changed it). */
  clear(account: string): this {
    this.loader?.clear(account);
    return this;
  }

  /** A `.then`, not an `await`: what a request holds while it waits for its call is kept small (see above). */
  private batch(accounts: readonly string[]): Promise<Array<V | Error>> {
    const { ids, deadline, trace } = this.request;
    if (ids.refusal) {
      const error = badInput(`Not looked up: this request has bad input (${ids.refusal.message})`);
      return Promise.resolve(accounts.map(() => error));
    }
    return this.reads.get(accounts, deadline, trace).then(asGraphQLErrors);
  }
}

/** The upstream's errors, as the GraphQL errors a field answers with. */
function asGraphQLErrors<V>(results: Array<V | Error>): Array<V | Error> {
  for (let i = 0; i < results.length; i++) {
    const r = results[i];
    if (r instanceof Error) results[i] = toGraphQLError(r) as Error;
  }
  return results;
}
