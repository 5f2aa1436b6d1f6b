/** What every resolver gets: per-request loaders over the shared services. */
import DataLoader from 'dataloader';
import type { GraphQLError } from 'graphql';
import type { Config } from '../config.js';
import { MAX_ACCOUNTS_PER_CALL } from '../tim/wire.js';
import type { UpstreamScheduler } from '../upstream/scheduler.js';
import { badInput, toGraphQLError } from './errors.js';

/** Long-lived services shared by every request of one gateway. */
export interface Services {
  config: Config;
  scheduler: UpstreamScheduler;
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
  /** Counts the distinct ids this request asks for, against MAX_IDS_PER_REQUEST. */
  ids: IdBudget;
  /** Epoch ms by which upstream work for this request must be done. */
  deadline: number;
  caller: Caller | null;
}

/**
 * Distinct ids of one request. Resolvers note ids as they meet them; once the
 * request goes over the limit, every lookup of it fails with BAD_USER_INPUT
 * in the loader's batch function, which runs before any upstream call.
 */
export class IdBudget {
  private readonly seen = new Set<string>();
  private error: GraphQLError | null = null;

  constructor(private readonly max: number) {}

  note(ids: Iterable<string>): void {
    for (const id of ids) this.seen.add(id);
    if (this.seen.size > this.max && !this.error) {
      this.error = badInput(`This request asks for more than ${this.max} distinct user ids (MAX_IDS_PER_REQUEST)`, {
        limit: this.max,
      });
    }
  }

  /** The error to give every lookup, once over the limit. */
  get exceeded(): GraphQLError | null {
    return this.error;
  }
}

export function createContext(services: Services, caller: Caller | null = null): GatewayContext {
  const deadline = Date.now() + services.config.requestTimeoutMs;
  const ids = new IdBudget(services.config.maxIdsPerRequest);
  const tags = new DataLoader<string, string[]>(
    async (accounts) => {
      if (ids.exceeded) return accounts.map(() => ids.exceeded!);
      const results = await services.scheduler.getTags(accounts, deadline);
      return results.map((r) => (Array.isArray(r) ? r : (toGraphQLError(r) as Error)));
    },
    { maxBatchSize: MAX_ACCOUNTS_PER_CALL },
  );
  return { services, tags, ids, deadline, caller };
}
