/** When and how long to wait before trying a failed upstream call again. */
import type { TimError } from '../tim/errors.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 50, maxDelayMs: 1000 };

/**
 * Exponential backoff with jitter (AWS's "equal jitter": half the doubling
 * cap, plus up to as much again at random): spreads the retries of many
 * callers so they do not hit the upstream in step, yet always backs off.
 */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(cap / 2 + (random() * cap) / 2);
}

/** What to do after attempt number `attempt` (1-based) failed with `err`. */
export function nextStep(
  policy: RetryPolicy,
  err: TimError,
  attempt: number,
  sigRenewed: boolean,
): { action: 'renew-sig' } | { action: 'retry'; delayMs: number } | { action: 'give-up' } {
  if (err.sigExpired) return sigRenewed ? { action: 'give-up' } : { action: 'renew-sig' };
  if (!err.retryable || attempt >= policy.maxAttempts) return { action: 'give-up' };
  return { action: 'retry', delayMs: backoffMs(policy, attempt) };
}
