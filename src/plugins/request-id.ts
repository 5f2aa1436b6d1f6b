/** Every response carries `x-request-id`: the caller's own when sent, else a new one; logs carry it too. */
import { randomFillSync } from 'node:crypto';
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
  return typeof given === 'string' && ACCEPTABLE.test(given) ? given : newRequestId();
}

/** Random bytes for this many ids at a time, as node's randomUUID keeps them. */
const IDS_PER_FILL = 128;
const randomBytes = Buffer.alloc(16 * IDS_PER_FILL);
let used = IDS_PER_FILL;
const HEX = Buffer.from('0123456789abcdef');
const text = Buffer.alloc(36);

/**
 * A random (version 4) UUID, as `crypto.randomUUID` makes it, but as one flat string: node joins
 * 20 pieces into a rope, and a rope of every request in flight is what each young-generation
 * collection copies while the requests wait for their call.
 */
export function newRequestId(): string {
  if (used === IDS_PER_FILL) {
    randomFillSync(randomBytes);
    used = 0;
  }
  const at = 16 * used++;
  randomBytes[at + 6] = (randomBytes[at + 6]! & 0x0f) | 0x40; // version 4
  randomBytes[at + 8] = (randomBytes[at + 8]! & 0x3f) | 0x80; // the RFC 4122 variant
  let j = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[j++] = 0x2d; // -
    const byte = randomBytes[at + i]!;
    text[j++] = HEX[byte >> 4]!;
    text[j++] = HEX[byte & 0x0f]!;
  }
  return text.toString('latin1', 0, 36);
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
