/** What every resolver gets: per-request loaders over the shared services. */
import DataLoader from 'dataloader';
import type { Config } from '../config.js';
import { MAX_ACCOUNTS_PER_CALL } from '../tim/wire.js';
import type { Logger } from 'pino';
import type { PushSender } from '../upstream/push.js';
import type { UpstreamScheduler } from '../upstream/scheduler.js';
import { badInput, toGraphQLError } from './errors.js';
import { RequestIds } from './ids.js';

/** Long-lived services shared by every request of one gateway. */
export interface Services {
  config: Config;
  scheduler: UpstreamScheduler;
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
  /** The ids this request asks for: checked and counted before any lookup. */
  ids: RequestIds;
  /** Epoch ms by which upstream work for this request must be done. */
  deadline: number;
  caller: Caller | null;
}

export function createContext(services: Services, caller: Caller | null = null): GatewayContext {
  const deadline = Date.now() + services.config.requestTimeoutMs;
  const ids = new RequestIds(services.config.maxIdsPerRequest);
  const tags = new DataLoader<string, string[]>(
    async (accounts) => {
      if (ids.refusal) {
        const error = badInput(`Not looked up: this request has bad input (${ids.refusal.message})`);
        return accounts.map(() => error);
      }
      const results = await services.scheduler.getTags(accounts, deadline);
      return results.map((r) => (Array.isArray(r) ? r : (toGraphQLError(r) as Error)));
    },
    { maxBatchSize: MAX_ACCOUNTS_PER_CALL },
  );
  return { services, tags, ids, deadline, caller };
}
