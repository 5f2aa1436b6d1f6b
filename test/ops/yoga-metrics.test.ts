/**
 * Issue 10: the standard GraphQL metrics (graphql-yoga's Prometheus plugin) on
 * the gateway's own /metrics, next to the tim_tags_* ones, with bounded labels.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRig, type TestRig } from '../helpers/gateway.js';

let rig: TestRig;
let text: string;
/** Every label value of every sample. */
let labelValues: string[];

const USER_IDS = ['metric-user-1', 'metric-user-2', 'metric-user-3'];

const sampleOf = (name: string, labels: Record<string, string>): number => {
  const wanted = Object.entries(labels);
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => [k, v]));
    if (wanted.every(([k, v]) => have[k] === v)) total += Number(m[3]);
  }
  return total;
};

beforeAll(async () => {
  rig = await startRig({ emulator: { seed: USER_IDS.map((id) => ({ To_Account: id, Tags: ['t'] })) } });
  // A few operations: named and anonymous reads, a client-made operation name, a write, a parse error, bad input.
  expect((await rig.query('query One { user(id: "metric-user-1") { tags } }')).errors).toBeUndefined();
  expect((await rig.query('{ users(ids: ["metric-user-2", "metric-user-3"]) { id tags } }')).errors).toBeUndefined();
  expect((await rig.query('query metric_user_3 { user(id: "metric-user-3") { tags } }')).errors).toBeUndefined();
  const write = await rig.query('mutation { addUserTags(input: [{ id: "metric-user-1", tags: ["x"] }]) { id } }');
  expect(write.errors).toBeUndefined();
  expect((await rig.query('{ user(id: ')).status).toBe(400);
  const bad = await rig.query('{ user(id: "") { tags } }');
  expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  const res = await fetch(`${rig.url}/metrics`);
  expect(res.status).toBe(200);
  text = await res.text();
  labelValues = [...text.matchAll(/\w+="((?:[^"\\]|\\.)*)"/g)].map(([, v]) => v!);
}, 30_000);
afterAll(() => rig.close());

describe('standard GraphQL metrics', () => {
  it('serves request, HTTP, parse, validate and execute durations next to the tim_tags_* metrics', () => {
    for (const name of [
      'graphql_yoga_http_duration',
      'graphql_envelop_request_duration',
      'graphql_envelop_phase_parse',
      'graphql_envelop_phase_validate',
      'graphql_envelop_phase_execute',
    ])
      expect(sampleOf(`${name}_count`, {}), name).toBeGreaterThan(0);
    expect(sampleOf('graphql_envelop_phase_execute_count', { operationType: 'query' })).toBe(4);
    expect(sampleOf('graphql_envelop_phase_execute_count', { operationType: 'mutation' })).toBe(1);
    expect(sampleOf('tim_tags_upstream_call_duration_seconds_count', { command: 'im_get_tag' })).toBeGreaterThan(0);
    expect(sampleOf('graphql_request_duration_seconds_count', {})).toBe(6);
  });

  it('counts errors by phase and extensions.code', () => {
    expect(sampleOf('graphql_envelop_error_result', { phase: 'parse', code: 'GRAPHQL_PARSE_FAILED' })).toBe(1);
    expect(sampleOf('graphql_envelop_error_result', { phase: 'execute', code: 'BAD_USER_INPUT' })).toBe(1);
  });

  it('has bounded labels: no user id, document, path or URL anywhere, and no client operation name on the plugin metrics', () => {
    expect(labelValues.length).toBeGreaterThan(0);
    for (const v of labelValues) expect(v).not.toMatch(/metric-user|\{|user\(|\/graphql/);
    expect(text).not.toMatch(/\b(operationName|path|url)="/);
    // Our own request histogram keeps plain client operation names (capped at 200); the plugin's metrics keep none.
    const plugin = text.split('\n').filter((l) => /^graphql_(envelop|yoga)_/.test(l));
    expect(plugin.length).toBeGreaterThan(0);
    for (const line of plugin) expect(line).not.toMatch(/One|metric_user_3/);
  });
});
