/** Failures the scheduler itself decides, before or instead of an upstream call. */

/** The rate budget cannot serve this lookup before its deadline. */
export class RateLimitedError extends Error {
  override readonly name = 'RateLimitedError';
  constructor(message = 'the upstream rate budget cannot serve this lookup in time') {
    super(message);
  }
}
