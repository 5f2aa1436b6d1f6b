/**
 * `/metrics`, and the one measurement of each GraphQL request: its duration,
 * operation name and outcome go to the metrics and to one info log line that
 * carries the request id.
 */
import { getOperationAST, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../metrics.js';
import { requestId } from './request-id.js';

export interface MetricsPluginOptions {
  metrics: GatewayMetrics;
  logger: Logger;
  graphqlEndpoint: string;
  /** The request's trace id when tracing is on, for its log line. */
  traceIdOf?: (request: Request) => string | undefined;
}

/** What is known about a GraphQL request while it is served. */
interface Observation {
  started: number;
  operation: string | null;
  outcome: string | null;
}

/** Error codes are ours or yoga's (upper snake case); anything else is counted as `other`. */
export const PLAIN_CODE = /^[A-Z][A-Z0-9_]{0,47}$/;

export function useMetrics({ metrics, logger, graphqlEndpoint, traceIdOf }: MetricsPluginOptions): Plugin {
  const observations = new WeakMap<Request, Observation>();

  return {
    async onRequest({ request, url, endResponse, fetchAPI }) {
      if (url.pathname === '/metrics' && (request.method === 'GET' || request.method === 'HEAD')) {
        const body = await metrics.render();
        endResponse(new fetchAPI.Response(body, { status: 200, headers: { 'content-type': metrics.contentType } }));
        return;
      }
      if (url.pathname === graphqlEndpoint && request.method !== 'OPTIONS') {
        observations.set(request, { started: performance.now(), operation: null, outcome: null });
        metrics.requestStarted();
      }
    },
    onParams({ request, params }) {
      const seen = observations.get(request);
      // Yoga refuses a name that is not a string only after this hook: take none until it is one.
      if (seen && typeof params.operationName === 'string' && params.operationName)
        seen.operation = params.operationName;
    },
    onExecute({ args }) {
      // The name a client gave, or the name of the document's only operation.
      const request = (args.contextValue as { request?: Request }).request;
      const seen = request && observations.get(request);
      if (seen && !seen.operation)
        seen.operation = getOperationAST(args.document, args.operationName)?.name?.value ?? null;
    },
    onResultProcess({ request, result }) {
      const seen = observations.get(request);
      if (seen) seen.outcome = outcomeOf(result);
    },
    onResponse({ request, response }) {
      const seen = observations.get(request);
      if (!seen) return;
      observations.delete(request);
      // GraphiQL's page is served at the same path: it is no GraphQL request.
      if (seen.outcome === null && (response.headers.get('content-type') ?? '').startsWith('text/html')) {
        metrics.requestAborted();
        return;
      }
      const outcome = finalOutcome(seen.outcome, response.status);
      const durationMs = performance.now() - seen.started;
      metrics.requestFinished({ operation: seen.operation, outcome, durationMs });
      // Below info (the bench's warn, say) the line is not built at all.
      if (!logger.isLevelEnabled('info')) return;
      logger.info(
        {
          requestId: requestId(request),
          traceId: traceIdOf?.(request),
          // A client's name, so kept short.
          operation: seen.operation?.slice(0, 100),
          outcome,
          status: response.status,
          durationMs: Math.round(durationMs * 10) / 10,
        },
        'graphql request',
      );
    },
  };
}

const NO_CODE = 'NO_CODE';

/** An error without a code (yoga's CSRF refusal, say) is told by its HTTP status. */
function finalOutcome(outcome: string | null, status: number): string {
  if (outcome === null) return status < 400 ? 'ok' : `HTTP_${status}`;
  if (outcome === NO_CODE) return status < 400 ? 'INTERNAL_SERVER_ERROR' : `HTTP_${status}`;
  return outcome;
}

/** `ok`, or the code of the first error (a response with partial data counts as that error). */
export function outcomeOf(result: unknown): string {
  const first = Array.isArray(result) ? result[0] : result;
  if (!first || typeof first !== 'object' || !('errors' in first)) return 'ok';
  const errors = (first as ExecutionResult).errors;
  if (!errors || errors.length === 0) return 'ok';
  const code = errors[0]!.extensions?.code;
  if (typeof code !== 'string') return NO_CODE;
  return PLAIN_CODE.test(code) ? code : 'other';
}
