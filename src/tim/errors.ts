/** The one error type of the TIM layer: every failed call becomes a TimError. */
import { TimCode } from './wire.js';

/**
 * `upstream`: TIM answered `ActionStatus: FAIL` (code is its ErrorCode).
 * `unavailable`: no usable answer: network error, timeout, HTTP status, unreadable body.
 */
export type TimErrorKind = 'upstream' | 'unavailable';

/** Codes worth another try after backing off (TIM-API.md). */
const RETRYABLE_CODES = new Set<number>([
  TimCode.INTERNAL_RETRY,
  TimCode.RATE_LIMITED,
  TimCode.APP_RATE_LIMITED,
  TimCode.INTERNAL_TIMEOUT,
  TimCode.INTERNAL_ERROR,
]);

export class TimError extends Error {
  override readonly name = 'TimError';

  constructor(
    readonly kind: TimErrorKind,
    /** TIM's ErrorCode for `upstream`; 0 for `unavailable`. */
    readonly code: number,
    message: string,
    readonly httpStatus?: number,
    /** `unavailable` only: the request surely never reached TIM (no connection could be made). */
    readonly notSent = false,
  ) {
    super(message);
  }

  static fail(code: number, info: string): TimError {
    return new TimError('upstream', code, `TIM error ${code}: ${info || 'no ErrorInfo'}`);
  }

  static unavailable(message: string, httpStatus?: number, { notSent = false } = {}): TimError {
    return new TimError('unavailable', 0, message, httpStatus, notSent);
  }

  /** Network errors, timeouts, HTTP 5xx and the upstream's retry codes. Garbage answers are not retried. */
  get retryable(): boolean {
    if (this.kind === 'unavailable') return this.httpStatus === undefined || this.httpStatus >= 500;
    return RETRYABLE_CODES.has(this.code);
  }

  /** 70001: the UserSig expired; sign anew and try once more. */
  get sigExpired(): boolean {
    return this.kind === 'upstream' && this.code === TimCode.USERSIG_EXPIRED;
  }
}
