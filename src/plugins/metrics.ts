/**
 * `/metrics`, and the one measurement of each GraphQL request: its duration,
 * operation name and outcome go to the metrics and to one info log line that
 * carries the request id. Yoga's hooks feed it through the plugin; the fast
 * path (src/fast-path.ts), which answers plain POSTs without yoga's HTTP
 * pipeline, feeds the same RequestObserver directly.
 */
import { getOperationAST, type DocumentNode, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { GatewayMetrics } from '../metrics.js';
import { requestId } from './request-id.js';
import { requestState } from './request-state.js';

export interface MetricsPluginOptions {
  metrics: GatewayMetrics;
  logger: Logger;
  graphqlEndpoint: string;
  /** The request's trace id when tracing is on, for its log line. */
  traceIdOf?: (request: Request) => string | undefined;
}

/** What is known about a GraphQL request while it is served. */
export interface Observation {
  started: number;
  operation: string | null;
  /** The operation's type once its document parsed (`unknown` when it names none), as yoga's Prometheus plugin labels it. */
  operationType: string | null;
  outcome: string | null;
}

/** Error codes are ours or yoga's (upper snake case); anything else is counted as `other`. */
export const PLAIN_CODE = /^[A-Z][A-Z0-9_]{0,47}$/;

/** Follows each GraphQL request from its start to its answer. */
export class RequestObserver {
  private readonly observations = requestState<Observation>('observation');

  constructor(readonly opts: MetricsPluginOptions) {}

  started(request: Request): void {
    this.observations.set(request, { started: performance.now(), operation: null, operationType: null, outcome: null });
    this.opts.metrics.requestStarted();
  }

  /** The operation name the client gave. */
  named(request: Request, operationName: unknown): void {
    const seen = this.observations.get(request);
    // Yoga refuses a name that is not a string only after its onParams hook: take none until it is one.
    if (seen && typeof operationName === 'string' && operationName) seen.operation = operationName;
  }

  parsed(request: Request | undefined, document: DocumentNode, operationName: unknown): void {
    const seen = request && this.observations.get(request);
    if (seen)
      seen.operationType =
        getOperationAST(document, typeof operationName === 'string' ? operationName : undefined)?.operation ??
        'unknown';
  }

  /** The operation about to run: its name, when the client gave none. */
  executing(request: Request | undefined, args: { document: DocumentNode; operationName?: string | null }): void {
    const seen = request && this.observations.get(request);
    if (seen && !seen.operation)
      seen.operation = getOperationAST(args.document, args.operationName)?.name?.value ?? null;
  }

  resulted(request: Request, result: unknown): void {
    const seen = this.observations.get(request);
    if (seen) seen.outcome = outcomeOf(result);
  }

  /** Records the answer; returns what was seen of the request (undefined when it was none at the GraphQL path). */
  answered(request: Request, status: number, contentType: string | null): Observation | undefined {
    const seen = this.observations.get(request);
    if (!seen) return undefined;
    this.observations.delete(request);
    const { metrics, logger, traceIdOf } = this.opts;
    // GraphiQL's page is served at the same path: it is no GraphQL request.
    if (seen.outcome === null && (contentType ?? '').startsWith('text/html')) {
      metrics.requestAborted();
      return seen;
    }
    const outcome = finalOutcome(seen.outcome, status);
    const durationMs = performance.now() - seen.started;
    metrics.requestFinished({ operation: seen.operation, outcome, durationMs });
    // Below info (the bench's warn, say) the line is not built at all.
    if (!logger.isLevelEnabled('info')) return seen;
    logger.info(
      {
        requestId: requestId(request),
        traceId: traceIdOf?.(request),
        // A client's name, so kept short.
        operation: seen.operation?.slice(0, 100),
        outcome,
        status,
        durationMs: Math.round(durationMs * 10) / 10,
      },
      'graphql request',
    );
    return seen;
  }
}

export function useMetrics(observer: RequestObserver): Plugin {
  const { metrics, graphqlEndpoint } = observer.opts;
  return {
    async onRequest({ request, url, endResponse, fetchAPI }) {
      if (url.pathname === '/metrics' && (request.method === 'GET' || request.method === 'HEAD')) {
        const body = await metrics.render();
        endResponse(new fetchAPI.Response(body, { status: 200, headers: { 'content-type': metrics.contentType } }));
        return;
      }
      if (url.pathname === graphqlEndpoint && request.method !== 'OPTIONS') observer.started(request);
    },
    onParams({ request, params }) {
      observer.named(request, params.operationName);
    },
    onParse({ context }) {
      const { request, params } = context as { request?: Request; params?: { operationName?: unknown } };
      if (!request) return;
      return ({ result }) => {
        if (!(result instanceof Error)) observer.parsed(request, result as DocumentNode, params?.operationName);
      };
    },
    onExecute({ args }) {
      // The name a client gave, or the name of the document's only operation.
      observer.executing((args.contextValue as { request?: Request }).request, args);
    },
    onResultProcess({ request, result }) {
      observer.resulted(request, result);
    },
    onResponse({ request, response }) {
      observer.answered(request, response.status, response.headers.get('content-type'));
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
