/**
 * One rate budget per upstream command. TIM counts each command's calls on
 * its own (100 calls/s each), so TIM_MAX_QPS is per command: a burst of writes
 * never slows reads, and attribute lookups never slow tag lookups. Each budget
 * keeps every rule of src/upstream/budget.ts; with REDIS_URL every command's
 * budget is shared by the fleet (keys named by command) over one connection.
 */
import type { Logger } from 'pino';
import type { Command } from '../tim/commands.js';
import { SlidingWindowBudget, type RateBudget } from './budget.js';
import { RedisRateBudget, type RedisBudgetOptions } from './redis-budget.js';
import { RedisLink } from './redis.js';

export interface Budgets {
  /** The budget of `command`: made on first use, the same one after. Never throws. */
  forCommand(command: Command): RateBudget;
  /** Where the budgets are kept (as one command's budget says it: they all live in one place), for /readyz. */
  describe(): string;
  close(): Promise<void>;
}

/** Budgets made on demand by `make`, one per command. */
class BudgetTable implements Budgets {
  private readonly budgets = new Map<Command, RateBudget>();

  constructor(
    private readonly make: (command: Command) => RateBudget,
    private readonly closeLink: () => Promise<void> = async () => {},
  ) {}

  forCommand(command: Command): RateBudget {
    let budget = this.budgets.get(command);
    if (!budget) this.budgets.set(command, (budget = this.make(command)));
    return budget;
  }

  describe(): string {
    return this.forCommand('im_get_tag').describe();
  }

  async close(): Promise<void> {
    for (const budget of this.budgets.values()) await budget.close?.();
    await this.closeLink();
  }
}

/** In-process budgets: `limit` calls per second for each command. */
export function localBudgets(limit: number): Budgets {
  return new BudgetTable(() => SlidingWindowBudget.paced(limit));
}

/** Fleet-wide budgets in Redis, one per command, over one connection. */
export async function redisBudgets(opts: Omit<RedisBudgetOptions, 'command'> & { log: Logger }): Promise<Budgets> {
  const share = Math.max(1, Math.floor(opts.limit / Math.max(1, opts.replicas)));
  const link = await RedisLink.open({
    url: opts.url,
    service: 'rate budget',
    log: opts.log,
    fallback: `the rate budgets fall back to this process's share, ${share} calls per second per command`,
    commandTimeoutMs: opts.commandTimeoutMs,
  });
  return new BudgetTable(
    (command) => RedisRateBudget.onLink({ ...opts, command }, link),
    () => link.close(),
  );
}
