/**
 * A span per GraphQL request, continuing the caller's W3C `traceparent`. Its
 * context is what the request's upstream lookups carry, so their call spans
 * become its children (or, when coalesced, its links).
 *
 * The span holds the operation's type and name, the outcome and the HTTP
 * status: never the document, variables or headers.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { getOperationAST, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { outcomeOf } from './metrics.js';
import { requestState } from './request-state.js';

export interface RequestTracing {
  plugin: Plugin;
  /**
   * The plugin's HTTP-level hooks by name, for the fast path (src/fast-path.ts), which answers plain
   * POSTs without yoga's hooks: the span starts with the request, takes its outcome with the result,
   * and ends with the answer. Each does nothing when tracing is off.
   */
  started(request: Request): void;
  /** The operation about to run (its execute hook, for a path that runs operations itself): the span is named after it. */
  executing(request: Request, args: OperationOf): void;
  resulted(request: Request, result: unknown): void;
  answered(request: Request, status: number): void;
  /** The request's span, for its upstream lookups; undefined when tracing is off. */
  spanContextOf(request: Request): SpanContext | undefined;
  /** The request's trace id, for its log line. */
  traceIdOf(request: Request): string | undefined;
}

/** An operation as execution is given it. */
interface OperationOf {
  document: DocumentNode;
  operationName?: string | null;
}

const headerGetter = {
  get: (headers: Headers, key: string) => headers.get(key) ?? undefined,
  keys: (headers: Headers) => [...headers.keys()],
};

/** Operation names come from clients: a span name keeps only a plain one. */
const PLAIN_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,99}$/;

export function useTracing(tracer: Tracer | null, graphqlEndpoint: string): RequestTracing {
  const spans = requestState<Span>('span');
  const nothing = () => {};
  const off: RequestTracing = {
    plugin: {},
    started: nothing,
    executing: nothing,
    resulted: nothing,
    answered: nothing,
    spanContextOf: () => undefined,
    traceIdOf: () => undefined,
  };
  if (!tracer) return off;
  const propagator = new W3CTraceContextPropagator();

  const started = (request: Request) => {
    const parent = propagator.extract(ROOT_CONTEXT, request.headers, headerGetter);
    spans.set(request, tracer.startSpan('graphql', { kind: SpanKind.SERVER }, parent));
  };
  const resulted = (request: Request, result: unknown) => {
    const span = spans.get(request);
    if (!span) return;
    const outcome = outcomeOf(result);
    span.setAttribute('graphql.outcome', outcome);
    if (outcome !== 'ok') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
  };
  const executing = (request: Request, args: OperationOf) => {
    const span = spans.get(request);
    const operation = span && getOperationAST(args.document, args.operationName);
    if (!span || !operation) return;
    const name = operation.name?.value;
    span.setAttribute('graphql.operation.type', operation.operation);
    if (name && PLAIN_NAME.test(name)) {
      span.setAttribute('graphql.operation.name', name);
      span.updateName(`${operation.operation} ${name}`);
    } else {
      span.updateName(operation.operation);
    }
  };
  const answered = (request: Request, status: number) => {
    const span = spans.get(request);
    if (!span) return;
    span.setAttribute('http.response.status_code', status);
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
  };

  const plugin: Plugin = {
    onRequest({ request, url }) {
      if (url.pathname !== graphqlEndpoint || request.method === 'OPTIONS') return;
      started(request);
    },
    onExecute({ args }) {
      const request = (args.contextValue as { request?: Request }).request;
      if (request) executing(request, args);
    },
    onResultProcess({ request, result }) {
      resulted(request, result);
    },
    onResponse({ request, response }) {
      answered(request, response.status);
    },
  };
  return {
    plugin,
    started,
    executing,
    resulted,
    answered,
    spanContextOf: (request) => spans.get(request)?.spanContext(),
    traceIdOf: (request) => spans.get(request)?.spanContext().traceId,
  };
}
