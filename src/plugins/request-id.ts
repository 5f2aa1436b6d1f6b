/** Every response carries `x-request-id`: the caller's own when sent, else a new one; logs carry it too. */
import { randomUUID } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';
import { requestState } from './request-state.js';

const HEADER = 'x-request-id';
/** A caller's id is kept only when it is short and plain, so it cannot forge log lines. */
const ACCEPTABLE = /^[\w.:@/+=-]{1,128}$/;

export function requestIdOf(request: Request): string {
  return requestIdFrom(request.headers.get(HEADER));
}

/** The same, from the raw header value, for answers given before yoga sees the request. */
export function requestIdFrom(given: string | string[] | null | undefined): string {
  return typeof given === 'string' && ACCEPTABLE.test(given) ? given : randomUUID();
}

const ids = requestState<string>('request id');

/** The id of a request, made once and remembered for its response. */
export function requestId(request: Request): string {
  let id = ids.get(request);
  if (!id) {
    id = requestIdOf(request);
    ids.set(request, id);
  }
  return id;
}

/**
 * Makes the id of a request from node's raw header (the same value its Headers would give), for a
 * path that has it at hand: a Headers over node's headers looks a missing one up by listing them all.
 */
export function assignRequestId(request: Request, given: string | string[] | undefined): void {
  if (ids.get(request) === undefined) ids.set(request, requestIdFrom(given));
}

export function useRequestId(): Plugin {
  return {
    onResponse({ request, response }) {
      response.headers.set(HEADER, requestId(request));
    },
  };
}
