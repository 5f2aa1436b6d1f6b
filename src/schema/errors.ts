/** The one place where failures become GraphQL errors with a stable `extensions.code`. */
import { GraphQLError } from 'graphql';
import { TimError } from '../tim/errors.js';
import { AttributeNameConflict, PushPacingError, RateLimitedError } from '../upstream/errors.js';
import { PushOutcomeUnknownError } from '../upstream/push.js';

export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'UPSTREAM_ERROR'
  | 'UPSTREAM_UNAVAILABLE'
  | 'RATE_LIMITED'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'GRAPHQL_PARSE_FAILED'
  | 'GRAPHQL_VALIDATION_FAILED'
  /** HTTP 503 from src/overload.ts, before yoga sees the request. */
  | 'OVERLOADED';

export function gqlError(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extensions } });
}

/** How long a client's value may be where an error message quotes it back. */
export const QUOTE_CHARS = 64;

/** A client's value (an id, a tag) as an error quotes it: JSON, cut to its first QUOTE_CHARS characters. */
export function quote(value: unknown): string {
  const text = String(value);
  return text.length <= QUOTE_CHARS
    ? JSON.stringify(text)
    : `${JSON.stringify(text.slice(0, QUOTE_CHARS))}... (${text.length} characters)`;
}

/** A client's value as an error's extensions carry it: its first QUOTE_CHARS characters. */
export function excerpt(value: unknown): string {
  return String(value).slice(0, QUOTE_CHARS);
}

export function badInput(message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return gqlError('BAD_USER_INPUT', message, extensions);
}

/** Maps any failure from below to a client-facing error; unknown errors are left for yoga to mask. */
export function toGraphQLError(err: unknown, extensions: Record<string, unknown> = {}): GraphQLError | unknown {
  if (err instanceof GraphQLError) return err;
  if (err instanceof AttributeNameConflict) {
    return badInput(err.message, { argument: 'names', name: err.attribute, ...extensions });
  }
  if (err instanceof RateLimitedError) {
    return gqlError(
      'RATE_LIMITED',
      err instanceof PushPacingError
        ? 'No push may leave before the request deadline (pushes leave one per second); try again shortly'
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
