/**
 * The last line of the deadline. Reads give up at their request's deadline (the scheduler's
 * backstop), but anything else a request waits on (a write's call started late, the Redis
 * budget, a slow plugin) could hold its answer past REQUEST_TIMEOUT_MS. So once an operation
 * has run `limitMs` (REQUEST_TIMEOUT_MS and a margin) without an answer sent, it is answered
 * here: 503 OVERLOADED, saying that writes may have been applied (they are idempotent: sending
 * the mutation again is safe). The late answer, when it comes, finds the response ended and is
 * dropped (the node adapter writes nothing to an ended response).
 */
import type { ServerResponse } from 'node:http';
import type { Plugin } from 'graphql-yoga';
import { writeErrorResponse } from './error-codes.js';
import { requestId, requestIdFrom } from './request-id.js';

/** How far past REQUEST_TIMEOUT_MS an answer may come: serialising it, and a loaded event loop. */
export const DEADLINE_MARGIN_MS = 1000;

export function useDeadlineBackstop(limitMs: number): Plugin {
  return {
    onExecute({ args }) {
      const { res, request } = args.contextValue as { res?: ServerResponse; request?: Request };
      if (!res) return;
      const deadline = armDeadline(res, request, limitMs);
      // Disarmed when the operation is done; one whose client left finds its response destroyed.
      return { onExecuteDone: () => clearTimeout(deadline) };
    },
  };
}

/**
 * Answers `res` with 503 OVERLOADED once `limitMs` have passed without an answer; `clearTimeout` of the
 * timer returned disarms it. The timer carries its arguments, not a closure over them: every request in
 * flight holds one.
 */
export function armDeadline(res: ServerResponse, request: Request | undefined, limitMs: number): NodeJS.Timeout {
  return setTimeout(answerLate, limitMs, res, request, limitMs).unref();
}

function answerLate(res: ServerResponse, request: Request | undefined, limitMs: number): void {
  if (res.headersSent || res.writableEnded || res.destroyed) return;
  const body = JSON.stringify({
    errors: [
      {
        message:
          `The gateway could not answer within ${limitMs} ms; retry after 1 s ` +
          '(a mutation may have been applied in part: sending it again is safe)',
        extensions: { code: 'OVERLOADED' },
      },
    ],
  });
  writeErrorResponse(res, 503, body, {
    'retry-after': '1',
    'x-request-id': request ? requestId(request) : requestIdFrom(null),
  });
}
