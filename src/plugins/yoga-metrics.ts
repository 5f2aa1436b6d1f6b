/**
 * The standard GraphQL metrics a stock dashboard expects (graphql-yoga's
 * Prometheus plugin), on the gateway's own registry and served by our
 * `/metrics` next to the `tim_tags_*` ones.
 *
 * Every label value is bounded: operation names come from clients and field
 * paths carry list indexes, so neither is a label (our own
 * `graphql_request_duration_seconds` keeps a capped set of operation names);
 * the URL label would hold a GET request's whole query. Errors are counted by
 * phase and `extensions.code`.
 */
import {
  usePrometheus,
  createCounter,
  createHistogram,
  type FillLabelsFnParams,
} from '@graphql-yoga/plugin-prometheus';
import type { ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Registry } from 'prom-client';
import { takeApart } from './fold.js';
import { counterSeries, histogramSeries } from '../metrics.js';
import { memoized } from '../memo.js';
import { PLAIN_CODE } from './metrics.js';

/** Label sets whose series the fast path keeps at hand (statuses times operation types: a few dozen). */
const MAX_SERIES = 256;

/** Yoga gives parse and validation errors their codes only later, as it answers. */
const PHASE_CODES: Record<string, string> = { parse: 'GRAPHQL_PARSE_FAILED', validate: 'GRAPHQL_VALIDATION_FAILED' };

function codeOf(error: unknown, phase: string): string {
  const code = (error as { extensions?: { code?: unknown } } | null)?.extensions?.code;
  if (typeof code !== 'string') return PHASE_CODES[phase] ?? 'NO_CODE';
  return PLAIN_CODE.test(code) ? code : 'other';
}

/**
 * The plugin's own labels for a phase metric (operationName is off), without its per-observation label filter.
 * A failed parse has no operation type: prom-client prints `undefined`, as it does for the plugin's own.
 */
const byOperationType = (params: { operationType?: string }) => ({ operationType: params.operationType as string });

/** `graphql_yoga_http_duration`'s labels, as the plugin fills them (operationName and url are off). */
const httpLabels = (method: string, statusCode: number, operationType: string | undefined) => ({
  method,
  statusCode,
  operationType: operationType || 'unknown',
});

export interface YogaMetrics {
  /**
   * Yoga's Prometheus plugin taken apart (plugins/fold.ts): its own hooks, then envelop's Prometheus
   * plugin that it adds, so that the gateway can fold their phase hooks with its own.
   */
  plugins: Plugin[];
  /**
   * Observes `graphql_yoga_http_duration` for a request the plugin's HTTP hooks did not see (the fast
   * path's), as they would have: only once its document parsed.
   */
  observeHttp(method: string, statusCode: number, operationType: string, seconds: number): void;
  /**
   * Observes, as the plugin's phase hooks would, an operation run outside envelop (src/prepared.ts): its
   * parse, validation and context at 0 s (done before, as they take for a cached document), its execution
   * and its result's errors.
   */
  observeExecuted(operationType: string, result: ExecutionResult, seconds: number): void;
}

export function useYogaMetrics(registry: Registry): YogaMetrics {
  // The plugin's standard metrics, named, described and labelled as it makes them; given as metric objects
  // only so that each observation builds its one label directly (the plugin filters every label set it builds).
  const phase = <P extends string>(name: string, help: string, phases: [P, ...P[]]) =>
    createHistogram({
      registry,
      histogram: { name, help, labelNames: ['operationType'] },
      fillLabelsFn: byOperationType,
      phases,
    });
  const httpDuration = createHistogram({
    registry,
    histogram: {
      name: 'graphql_yoga_http_duration',
      help: 'Time spent on HTTP connection',
      labelNames: ['operationType', 'method', 'statusCode'],
    },
    fillLabelsFn: (params, { request, response }) => httpLabels(request.method, response.status, params.operationType),
    phases: ['request'] as ['request'],
  });
  const requestDuration = phase(
    'graphql_envelop_request_duration',
    'Time spent on running the GraphQL operation from parse to execute',
    ['execute', 'subscribe'],
  );
  const parsePhase = phase('graphql_envelop_phase_parse', 'Time spent on running GraphQL "parse" function', ['parse']);
  const validatePhase = phase('graphql_envelop_phase_validate', 'Time spent on running GraphQL "validate" function', [
    'validate',
  ]);
  const contextPhase = phase('graphql_envelop_phase_context', 'Time spent on building the GraphQL context', [
    'context',
  ]);
  const executePhase = phase('graphql_envelop_phase_execute', 'Time spent on running the GraphQL "execute" function', [
    'execute',
  ]);
  const requests = createCounter<'execute' | 'subscribe', 'operationType'>({
    registry,
    counter: {
      name: 'graphql_envelop_request',
      help: 'Counts the amount of GraphQL requests executed through Envelop',
      labelNames: ['operationType'],
    },
    fillLabelsFn: byOperationType,
    phases: ['execute', 'subscribe'],
  });
  type ErrorPhase = 'parse' | 'validate' | 'context' | 'execute' | 'subscribe';
  const errors = createCounter<
    ErrorPhase,
    'operationType' | 'phase' | 'code',
    FillLabelsFnParams & { error: unknown; errorPhase: ErrorPhase }
  >({
    registry,
    counter: {
      name: 'graphql_envelop_error_result',
      help: 'GraphQL errors by phase and extensions.code',
      labelNames: ['operationType', 'phase', 'code'],
    },
    fillLabelsFn: (params) => errorLabels(params.operationType, params.errorPhase, params.error),
  });
  const plugin: Plugin = usePrometheus({
    registry,
    // Our own plugin serves /metrics, from the same registry.
    endpoint: false,
    labels: { operationName: false, path: false, url: false, fieldName: false, typeName: false, returnType: false },
    metrics: {
      graphql_yoga_http_duration: httpDuration,
      graphql_envelop_request_duration: requestDuration,
      graphql_envelop_phase_parse: parsePhase,
      graphql_envelop_phase_validate: validatePhase,
      graphql_envelop_phase_context: contextPhase,
      graphql_envelop_phase_execute: executePhase,
      graphql_envelop_request: requests,
      graphql_envelop_error_result: errors,
      // Resolver timing is per field: costly on lists of users, and the upstream metrics say where time goes.
      graphql_envelop_execute_resolver: false,
      graphql_envelop_deprecated_field: false,
      graphql_envelop_request_time_summary: false,
      graphql_envelop_schema_change: false,
      graphql_envelop_phase_subscribe: false,
    },
  });
  // The series the fast path observes, each looked up once: prom-client hashes a label set on every observe.
  const httpSeries = memoized((key: string) => {
    const [method, statusCode, operationType] = key.split('\0') as [string, string, string];
    return histogramSeries(httpDuration.histogram, httpLabels(method, Number(statusCode), operationType));
  }, MAX_SERIES);
  const executedSeries = memoized((operationType: string) => {
    const labels = { operationType };
    return {
      parse: histogramSeries(parsePhase.histogram, labels),
      validate: histogramSeries(validatePhase.histogram, labels),
      context: histogramSeries(contextPhase.histogram, labels),
      execute: histogramSeries(executePhase.histogram, labels),
      duration: histogramSeries(requestDuration.histogram, labels),
      requests: counterSeries(requests.counter, labels),
    };
  }, MAX_SERIES);
  return {
    plugins: takeApart(plugin),
    observeHttp: (method, statusCode, operationType, seconds) =>
      httpSeries(`${method}\0${statusCode}\0${operationType}`).observe(seconds),
    observeExecuted: (operationType, result, seconds) => {
      const series = executedSeries(operationType);
      // What the plugin's hooks observe of an operation whose document was parsed and validated before.
      series.parse.observe(0);
      series.validate.observe(0);
      series.context.observe(0);
      for (const error of result.errors ?? [])
        errors.counter.labels(errorLabels(operationType, 'execute', error)).inc();
      series.execute.observe(seconds);
      series.duration.observe(seconds);
      series.requests.inc();
    },
  };
}

/** `graphql_envelop_error_result`'s labels for one error. */
function errorLabels(operationType: string | undefined, phase: string, error: unknown) {
  return { operationType: operationType ?? 'unknown', phase, code: codeOf(error, phase) };
}
