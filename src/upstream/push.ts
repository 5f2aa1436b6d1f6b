/**
 * The push sender: one im_push per pushMessage, delivered at most once.
 *
 * push(): a key whose push succeeded answers its TaskId again (the record);
 * a key already being pushed by this gateway shares that push; otherwise
 * the audience's attribute names are checked, then attempts run, each
 * waiting its pacing turn, all with the same MsgRandom, until TIM answers,
 * or says something that cannot be retried, or the deadline comes.
 */
import type { Logger } from 'pino';
import type { TimClient } from '../tim/client.js';
import { TimError } from '../tim/errors.js';
import {
  PUSH_COMMAND,
  PushCode,
  PushInputProblem,
  attributeNamesOf,
  msgRandomFor,
  type AudienceKind,
  type PushAnswer,
  type PushRequest,
} from '../tim/push.js';
import { TimCode } from '../tim/wire.js';
import type { AttributeNameSource } from './attribute-names.js';
import { RateLimitedError } from './errors.js';
import type { PushPacer } from './push-pacer.js';
import type { PushRecords } from './push-records.js';
import { DEFAULT_RETRY, backoffMs, type RetryPolicy } from './retry.js';

/** The push may or may not have gone out: TIM's answer was lost (timeout, HTTP 5xx, connection lost mid-call). */
export class PushOutcomeUnknownError extends Error {
  override readonly name = 'PushOutcomeUnknownError';
  constructor(override readonly cause: TimError) {
    super(
      `The push may have gone out: Tencent IM's answer was lost (${cause.message}). Sending the same mutation ` +
        'again with the same idempotencyKey re-sends the same MsgRandom, which TIM treats as the same push.',
    );
  }
}

/** TIM said it did not take the push: 90024 (too soon after another), 60007 / 60011 (rate), 91000 (retry). */
const NOT_TAKEN_CODES = new Set<number>([
  PushCode.TOO_FREQUENT,
  TimCode.RATE_LIMITED,
  TimCode.APP_RATE_LIMITED,
  TimCode.INTERNAL_RETRY,
]);

/** Time an attempt needs before the deadline to be worth making. */
const MIN_CALL_MS = 200;

export interface PushSenderOptions {
  client: TimClient;
  sdkappid: number;
  pacer: PushPacer;
  records: PushRecords;
  attributeNames: AttributeNameSource;
  log: Logger;
  retry?: RetryPolicy;
}

export interface PushOrder {
  body: Omit<PushRequest, 'MsgRandom'>;
  kind: AudienceKind;
  idempotencyKey?: string | null;
}

export interface PushResult {
  taskId: string;
  /** Answered from the idempotency record or a push in flight: no call of its own. */
  repeated: boolean;
}

export class PushSender {
  /** Keyed pushes in flight in this gateway: a duplicate shares the one send. */
  private readonly inFlight = new Map<string, Promise<string>>();
  private readonly retry: RetryPolicy;

  constructor(private readonly opts: PushSenderOptions) {
    this.retry = opts.retry ?? DEFAULT_RETRY;
  }

  async push(order: PushOrder, deadline: number): Promise<PushResult> {
    const key = order.idempotencyKey ?? null;
    if (key === null) return { taskId: await this.send(order, deadline), repeated: false };
    const known = await this.opts.records.taskOf(key);
    if (known) return { taskId: known, repeated: true };
    const running = this.inFlight.get(key);
    if (running) return { taskId: await running, repeated: true };
    const sending = this.send(order, deadline).then(async (taskId) => {
      await this.opts.records.remember(key, taskId);
      return taskId;
    });
    this.inFlight.set(key, sending);
    try {
      return { taskId: await sending, repeated: false };
    } finally {
      this.inFlight.delete(key);
    }
  }

  private async send(order: PushOrder, deadline: number): Promise<string> {
    await this.checkAttributeNames(order, deadline);
    const body: PushRequest = { MsgRandom: msgRandomFor(this.opts.sdkappid, order.idempotencyKey), ...order.body };
    let sigRenewed = false;
    let lastError: TimError | null = null;
    for (let attempt = 1; ; attempt++) {
      const turn = await this.opts.pacer.turn(deadline - MIN_CALL_MS);
      if (!turn)
        throw lastError ?? new RateLimitedError('no push may leave before the request deadline (one per second)');
      let error: TimError;
      try {
        const answer = await this.opts.client.call<PushAnswer>(PUSH_COMMAND, body, 0, deadline - Date.now());
        if (!answer.TaskId) throw TimError.unavailable('TIM answered im_push without a TaskId');
        return answer.TaskId;
      } catch (err) {
        error = err instanceof TimError ? err : TimError.unavailable(String(err));
      } finally {
        turn.ended();
      }
      lastError = error;
      if (error.sigExpired && !sigRenewed) {
        // Safe: TIM checks the UserSig before it reads the push, so a 70001 push was not taken.
        this.opts.client.renewSig();
        sigRenewed = true;
        continue;
      }
      if (error.kind === 'unavailable') {
        // A connection that was never made carried nothing: safe to try again. Any other lost answer
        // (timeout, HTTP 5xx, reset mid-call) may follow a push TIM took: never retried.
        if (!error.notSent) throw new PushOutcomeUnknownError(error);
      } else if (!NOT_TAKEN_CODES.has(error.code)) {
        // Any other refusal (90047 quota, 90045 not enabled, bad input) will not change on a retry.
        throw error;
      }
      // Safe: TIM said it did not take this push (or never saw it), and the retry carries the same MsgRandom.
      if (attempt >= this.retry.maxAttempts) throw error;
      const delayMs = backoffMs(this.retry, attempt);
      if (Date.now() + delayMs + MIN_CALL_MS >= deadline) throw error;
      this.opts.log.debug({ command: PUSH_COMMAND, code: error.code, attempt, delayMs }, 'retrying push');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }

  /** An audience naming an attribute the app has not named is refused before any push. */
  private async checkAttributeNames(order: PushOrder, deadline: number): Promise<void> {
    const used = attributeNamesOf(order.body.Condition);
    if (used.length === 0) return;
    const named = await this.opts.attributeNames.names(deadline);
    const unknown = used.find((n) => !named.has(n));
    if (unknown !== undefined)
      throw new PushInputProblem(
        'input.audience',
        `attribute ${JSON.stringify(unknown)} is not one of the app's attribute names (${[...named].join(', ') || 'none named'})`,
      );
  }

  describe(): string {
    return `pacing ${this.opts.pacer.describe()}, idempotency keys in ${this.opts.records.describe()}`;
  }

  async close(): Promise<void> {
    await this.opts.pacer.close?.();
    await this.opts.records.close?.();
  }
}
