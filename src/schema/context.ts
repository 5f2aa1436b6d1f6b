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
  tags: DataLoader<string, string[]>;
  /** The request's `User.attributes` / `User.attribute` loader: one im_get_attr lookup per user, batched the same way. */
  attributes: DataLoader<string, Attrs>;
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
  /** A loader over one read command: refused as a whole when the request's ids are bad, else batched and shared. */
  const loaderOf = <V>(reads: AccountReads<'im_get_tag' | 'im_get_attr', V>) =>
    new DataLoader<string, V>(
      async (accounts) => {
        if (ids.refusal) {
          const error = badInput(`Not looked up: this request has bad input (${ids.refusal.message})`);
          return accounts.map(() => error);
        }
        const results: Array<V | Error> = await reads.get(accounts, deadline, trace);
        for (let i = 0; i < results.length; i++) {
          const r = results[i];
          if (r instanceof Error) results[i] = toGraphQLError(r) as Error;
        }
        return results;
      },
      { maxBatchSize: MAX_ACCOUNTS_PER_CALL },
    );
  const tags = loaderOf(services.upstream.tags);
  const attributes = loaderOf(services.upstream.attributes);
  return { services, tags, attributes, ids, deadline, caller, trace };
}
