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
import type { PushRequest } from '../tim/commands.js';
import {
  PUSH_COMMAND,
  PushCode,
  PushInputProblem,
  attributeNamesOf,
  msgRandomFor,
  type AudienceKind,
} from '../tim/push.js';
import { TimCode } from '../tim/wire.js';
import type { AttemptLoop } from './attempt.js';
import type { AttributeNames } from './attribute-names.js';
import { PushPacingError } from './errors.js';
import type { PushPacer } from './push-pacer.js';
import type { PushRecords } from './push-records.js';
import { MIN_CALL_MS } from './attempt.js';
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

export interface PushSenderOptions {
  /** Main's attempt loop: its circuit, its im_push budget slot and its events; called with `retry: false`. */
  attempts: AttemptLoop;
  /** Only to sign anew after 70001 (the attempt loop does not when told not to retry). */
  client: TimClient;
  sdkappid: number;
  pacer: PushPacer;
  records: PushRecords;
  attributeNames: AttributeNames;
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
      if (!turn) {
        if (lastError) throw lastError;
        this.opts.attempts.events.rateLimited?.(1);
        throw new PushPacingError();
      }
      let error: TimError;
      try {
        // One attempt: the attempt loop's own retries are off, the decisions below are the push's.
        const answer = await this.opts.attempts.call(PUSH_COMMAND, body, deadline, { retry: false });
        if (!answer.TaskId) throw TimError.unavailable('TIM answered im_push without a TaskId');
        return answer.TaskId;
      } catch (err) {
        // Not a TimError: refused before any call (no budget slot in time), so nothing was sent.
        if (!(err instanceof TimError)) throw err;
        error = err;
      } finally {
        turn.ended();
      }
      lastError = error;
      if (error.sigExpired && !sigRenewed) {
        // Safe: TIM checks the UserSig before it reads the push, so a 70001 push was not taken.
        this.opts.client.renewSig();
        sigRenewed = true;
        this.opts.attempts.events.retry?.(PUSH_COMMAND, error.code);
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
      this.opts.attempts.events.retry?.(PUSH_COMMAND, error.code);
      this.opts.log.debug({ command: PUSH_COMMAND, code: error.code, attempt, delayMs }, 'retrying push');
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }

  /** An audience naming an attribute the app has not named is refused before any push. */
  private async checkAttributeNames(order: PushOrder, deadline: number): Promise<void> {
    const used = attributeNamesOf(order.body.Condition);
    if (used.length === 0) return;
    // The kept names, read afresh once before a name is refused (a rename through another gateway).
    const unknown = await this.opts.attributeNames.unknown(used, deadline);
    if (unknown.length > 0) {
      const named = [...(await this.opts.attributeNames.known(deadline)).keys()];
      throw new PushInputProblem(
        'input.audience',
        `attribute ${JSON.stringify(unknown[0])} is not one of the app's attribute names (${named.join(', ') || 'none named'})`,
      );
    }
  }

  describe(): string {
    return `pacing ${this.opts.pacer.describe()}, idempotency keys in ${this.opts.records.describe()}`;
  }

  async close(): Promise<void> {
    await this.opts.pacer.close?.();
    await this.opts.records.close?.();
  }
}
