/** The one place where failures become GraphQL errors with a stable `extensions.code`. */
import { GraphQLError } from 'graphql';
import { TimError } from '../tim/errors.js';
import { RateLimitedError } from '../upstream/errors.js';
import { PushOutcomeUnknownError } from '../upstream/push.js';

export type ErrorCode =
  'BAD_USER_INPUT' | 'UPSTREAM_ERROR' | 'UPSTREAM_UNAVAILABLE' | 'RATE_LIMITED' | 'UNAUTHENTICATED' | 'FORBIDDEN';

export function gqlError(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extensions } });
}

export function badInput(message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return gqlError('BAD_USER_INPUT', message, extensions);
}

/** Maps any failure from below to a client-facing error; unknown errors are left for yoga to mask. */
export function toGraphQLError(err: unknown, extensions: Record<string, unknown> = {}): GraphQLError | unknown {
  if (err instanceof GraphQLError) return err;
  if (err instanceof RateLimitedError) {
    return gqlError(
      'RATE_LIMITED',
      err.message.includes('push')
        ? `${err.message}; try again shortly`
        : 'The upstream rate budget cannot serve this lookup in time; try again shortly',
      extensions,
    );
  }
  if (err instanceof PushOutcomeUnknownError) {
    return gqlError('UPSTREAM_UNAVAILABLE', err.message, { delivery: 'UNKNOWN', ...extensions });
  }
  if (err instanceof TimError) {
    if (err.kind === 'upstream') {
      return gqlError('UPSTREAM_ERROR', `Tencent IM refused the call: ${err.message}`, {
        timErrorCode: err.code,
        ...extensions,
      });
    }
    return gqlError('UPSTREAM_UNAVAILABLE', `Tencent IM could not be reached: ${err.message}`, extensions);
  }
  return err;
}
