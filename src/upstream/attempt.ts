/**
 * The attempt loop: every TIM call of the gateway, read or write, is made here.
 *
 * One logical call is a few attempts. Each attempt takes a slot of its
 * command's budget (the first may come with the call, from the lookup queue),
 * asks the circuit, and runs within the request's deadline; what TIM-API.md
 * says may be retried is retried with backoff while the deadline allows, and
 * an expired UserSig is signed anew once. No attempt runs past the deadline,
 * and every slot taken is reported as ended or unused. Each attempt is one
 * span (trace.ts), a child of the requests the call serves.
 */
import type { Logger } from 'pino';
import type { TimClient } from '../tim/client.js';
import { accountsIn, type AnswerOf, type Command, type RequestOf } from '../tim/commands.js';
import { TimError } from '../tim/errors.js';
import { TimCode } from '../tim/wire.js';
import type { BudgetSlot } from './budget.js';
import type { Budgets } from './budgets.js';
import { Circuit } from './circuit.js';
import { RateLimitedError } from './errors.js';
import { DEFAULT_RETRY, nextStep, type RetryPolicy } from './retry.js';
import { distinctRequests, NO_TRACE, type RequestTrace, type UpstreamTracer } from './trace.js';

/** Hooks for metrics; every one optional. */
export interface AttemptEvents {
  budgetWait?(ms: number): void;
  rateLimited?(accounts: number): void;
  retry?(command: Command, code: number): void;
}

export interface AttemptOptions {
  client: TimClient;
  budgets: Budgets;
  log: Logger;
  circuit?: Circuit;
  retry?: RetryPolicy;
  events?: AttemptEvents;
  /** A span per attempt (tracing off: none). */
  tracer?: UpstreamTracer;
}

/**
 * Time a call needs before its deadline to be worth making: a slot that would
 * come later than this is not taken, and the call fails as rate limited
 * rather than as a call cut short.
 */
export const MIN_CALL_MS = 200;

/** Upstream codes that say the upstream is broken, as opposed to busy (60007, 60011) or refusing this call. */
const OUTAGE_CODES = new Set<number>([TimCode.INTERNAL_RETRY, TimCode.INTERNAL_TIMEOUT, TimCode.INTERNAL_ERROR]);

export class AttemptLoop {
  readonly circuit: Circuit;
  readonly events: AttemptEvents;
  private readonly retry: RetryPolicy;
  private readonly tracer: UpstreamTracer;
  /** How long each slot `slotFor` handed out was waited for, for its attempt's span. */
  private readonly waits = new WeakMap<BudgetSlot, number>();

  constructor(private readonly opts: AttemptOptions) {
    this.circuit = opts.circuit ?? new Circuit();
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.events = opts.events ?? {};
    this.tracer = opts.tracer ?? NO_TRACE;
  }

  /**
   * Makes one logical call and resolves with its answer, or rejects with the
   * TimError (or RateLimitedError) of its last attempt. `firstSlot`, when
   * given, is a slot of `command`'s budget already held for the first attempt.
   * Retrying is safe for every command but im_push (gets read; tag and
   * attribute writes are idempotent); im_push callers pass `retry: false`.
   * `traces` are the requests the call serves (several when coalesced), whose
   * spans each attempt's span continues.
   */
  async call<C extends Command>(
    command: C,
    body: RequestOf<C>,
    deadline: number,
    {
      firstSlot,
      retry = true,
      traces = [],
    }: { firstSlot?: BudgetSlot; retry?: boolean; traces?: readonly RequestTrace[] } = {},
  ): Promise<AnswerOf<C>> {
    let slot = firstSlot ?? null;
    let sigRenewed = false;
    const requests = distinctRequests(traces);
    for (let attempt = 1; ; attempt++) {
      if (this.circuit.state === 'open') {
        slot?.unused();
        throw circuitOpenError();
      }
      if (!slot) {
        slot = await this.slotFor(command, deadline);
        if (!slot) {
          this.events.rateLimited?.(Math.max(1, accountsIn(command, body).length));
          throw new RateLimitedError();
        }
      }
      const timeLeft = deadline - Date.now();
      if (timeLeft <= 0) {
        slot.unused();
        throw TimError.unavailable('no time left before the request deadline', undefined, { notSent: true });
      }
      if (!this.circuit.allow()) {
        slot.unused();
        throw circuitOpenError();
      }
      let error: TimError;
      const span = this.tracer.call({
        command,
        accounts: accountsIn(command, body).length,
        attempt,
        budgetWaitMs: this.waits.get(slot) ?? 0,
        requests,
      });
      try {
        const answer = await this.opts.client.call(command, body, timeLeft);
        span.end();
        this.circuit.success();
        return answer;
      } catch (err) {
        error = err instanceof TimError ? err : TimError.unavailable(String(err));
        span.end({ errorCode: error.code || undefined, error: error.message });
      } finally {
        slot.ended();
        slot = null;
      }
      this.judge(error, deadline);
      if (!retry) throw error;
      const step = nextStep(this.retry, error, attempt, sigRenewed);
      if (step.action === 'give-up') throw error;
      this.events.retry?.(command, error.code);
      if (step.action === 'renew-sig') {
        this.opts.client.renewSig();
        sigRenewed = true;
        continue;
      }
      if (Date.now() + step.delayMs + MIN_CALL_MS >= deadline) throw error;
      this.opts.log.debug({ command, code: error.code, delayMs: step.delayMs, attempt }, 'retrying upstream call');
      await sleep(step.delayMs);
    }
  }

  /** A slot of `command`'s budget in time for a call that must end by `deadline`, or null when none can be had. */
  async slotFor(command: Command, deadline: number): Promise<BudgetSlot | null> {
    const waitStarted = Date.now();
    const slot = await this.opts.budgets.forCommand(command).acquireSlot(deadline - MIN_CALL_MS);
    const waitedMs = Date.now() - waitStarted;
    this.events.budgetWait?.(waitedMs);
    if (slot) this.waits.set(slot, waitedMs);
    return slot;
  }

  /** Calls per second `command`'s budget grants now. */
  limitOf(command: Command): number {
    return this.opts.budgets.forCommand(command).limit;
  }

  /** Calls per second of `command`'s budget this process can count on as its own (RateBudget.share). */
  shareOf(command: Command): number {
    const budget = this.opts.budgets.forCommand(command);
    return budget.share ?? budget.limit;
  }

  /** Why a call due by `deadline` fails before it is queued: no time left for one, or the upstream is known down. */
  refusal(deadline: number): Error | null {
    if (Date.now() + MIN_CALL_MS >= deadline) return new RateLimitedError();
    if (this.circuit.state === 'open') return circuitOpenError();
    return null;
  }

  /**
   * Tells the circuit what a failed attempt says about the upstream: no usable
   * answer or an internal error is an outage; being busy (60007, 60011), or
   * running into the request's own deadline, says nothing either way; any
   * other refusal means it works.
   */
  private judge(error: TimError, deadline: number): void {
    if (error.code === TimCode.RATE_LIMITED || error.code === TimCode.APP_RATE_LIMITED || Date.now() >= deadline) {
      this.circuit.inconclusive();
    } else if (error.kind === 'unavailable' || OUTAGE_CODES.has(error.code)) {
      this.circuit.failure();
    } else {
      this.circuit.success();
    }
  }
}

export function circuitOpenError(): TimError {
  return TimError.unavailable('the upstream is failing; calls are paused for a moment', undefined, { notSent: true });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
