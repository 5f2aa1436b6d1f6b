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
import { usePrometheus, createCounter } from '@graphql-yoga/plugin-prometheus';
import type { Plugin } from 'graphql-yoga';
import type { Registry } from 'prom-client';
import { PLAIN_CODE } from './metrics.js';

/** Yoga gives parse and validation errors their codes only later, as it answers. */
const PHASE_CODES: Record<string, string> = { parse: 'GRAPHQL_PARSE_FAILED', validate: 'GRAPHQL_VALIDATION_FAILED' };

function codeOf(error: unknown, phase: string): string {
  const code = (error as { extensions?: { code?: unknown } } | null)?.extensions?.code;
  if (typeof code !== 'string') return PHASE_CODES[phase] ?? 'NO_CODE';
  return PLAIN_CODE.test(code) ? code : 'other';
}

export function useYogaMetrics(registry: Registry): Plugin {
  return usePrometheus({
    registry,
    // Our own plugin serves /metrics, from the same registry.
    endpoint: false,
    labels: { operationName: false, path: false, url: false, fieldName: false, typeName: false, returnType: false },
    metrics: {
      graphql_yoga_http_duration: true,
      graphql_envelop_request_duration: true,
      graphql_envelop_phase_parse: true,
      graphql_envelop_phase_validate: true,
      graphql_envelop_phase_context: true,
      graphql_envelop_phase_execute: true,
      graphql_envelop_request: true,
      graphql_envelop_error_result: createCounter({
        registry,
        counter: {
          name: 'graphql_envelop_error_result',
          help: 'GraphQL errors by phase and extensions.code',
          labelNames: ['operationType', 'phase', 'code'],
        },
        fillLabelsFn: (params) => ({
          operationType: params.operationType ?? 'unknown',
          phase: params.errorPhase,
          code: codeOf(params.error, params.errorPhase),
        }),
      }),
      // Resolver timing is per field: costly on lists of users, and the upstream metrics say where time goes.
      graphql_envelop_execute_resolver: false,
      graphql_envelop_deprecated_field: false,
      graphql_envelop_request_time_summary: false,
      graphql_envelop_schema_change: false,
      graphql_envelop_phase_subscribe: false,
    },
  });
}
