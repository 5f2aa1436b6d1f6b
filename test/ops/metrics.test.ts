/** Issue 7: /metrics counts what the gateway did, and agrees with what the emulator saw. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GatewayMetrics, METRIC_NAMES } from '../../src/metrics.js';
import { callsOf, startRig, type TestRig } from '../helpers/gateway.js';

/** One scrape of /metrics, read into samples: `name{a="1",b="2"}` -> value. */
class Scrape {
  private constructor(
    readonly text: string,
    private readonly samples: Map<string, number>,
  ) {}

  static async of(rig: TestRig): Promise<Scrape> {
    const res = await fetch(`${rig.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const samples = new Map<string, number>();
    for (const line of text.split('\n')) {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!m) continue;
      const labels = [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(([, k, v]) => [k!, v!] as const);
      samples.set(key(m[1]!, Object.fromEntries(labels)), Number(m[3]));
    }
    return new Scrape(text, samples);
  }

  /** The sample with exactly these labels; 0 when the series does not exist (yet). */
  get(name: string, labels: Record<string, string> = {}): number {
    return this.samples.get(key(name, labels)) ?? 0;
  }

  /** Sum over every series of a name whose labels include `labels`. */
  sum(name: string, labels: Record<string, string> = {}): number {
    let total = 0;
    for (const [k, v] of this.samples) {
      const { name: n, labels: l } = JSON.parse(k) as { name: string; labels: Record<string, string> };
      if (n === name && Object.entries(labels).every(([lk, lv]) => l[lk] === lv)) total += v;
    }
    return total;
  }
}

function key(name: string, labels: Record<string, string>): string {
  return JSON.stringify({
    name,
    labels: Object.fromEntries(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b))),
  });
}

const seed = Array.from({ length: 300 }, (_, i) => ({ To_Account: `u${i}`, Tags: [`t${i % 5}`] }));
const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `u${from + i}`);
const USERS = 'query Bulk($ids: [ID!]!) { users(ids: $ids) { id tags } }';
const ONE = 'query One($id: ID!) { user(id: $id) { id tags } }';
const getTag = { command: 'im_get_tag' };

describe('a gateway under a known workload', () => {
  let rig: TestRig;
  beforeAll(async () => {
    rig = await startRig({ emulator: { seed } });
  });
  afterAll(() => rig.close());
  beforeEach(() => {
    rig.emulator.resetCalls();
    rig.emulator.clearFaults();
  });

  it('serves every metric it documents, in its own registry, with the process defaults', async () => {
    const scrape = await Scrape.of(rig);
    for (const name of METRIC_NAMES) expect(scrape.text).toContain(`# HELP ${name} `);
    expect(scrape.text).toContain('# TYPE process_cpu_user_seconds_total counter');
    expect(scrape.get('tim_tags_circuit_state', { state: 'closed' })).toBe(1);
    expect(scrape.get('tim_tags_circuit_state', { state: 'open' })).toBe(0);
  });

  it('counts 250 ids as the 3 calls of 100, 100 and 50 accounts the emulator saw', async () => {
    const before = await Scrape.of(rig);
    const res = await rig.query(USERS, { ids: ids(250) });
    expect(res.errors).toBeUndefined();
    const after = await Scrape.of(rig);

    const seen = callsOf(rig.emulator);
    expect(seen.map((c) => c.accounts.length).sort((a, b) => a - b)).toEqual([50, 100, 100]);
    const delta = (name: string, labels: Record<string, string> = {}) =>
      after.get(name, labels) - before.get(name, labels);

    const ok = { command: 'im_get_tag', outcome: 'ok', code: '0' };
    expect(delta('tim_tags_upstream_call_duration_seconds_count', ok)).toBe(seen.length);
    expect(delta('tim_tags_upstream_call_accounts_count', getTag)).toBe(3);
    expect(delta('tim_tags_upstream_call_accounts_sum', getTag)).toBe(250);
    // Cumulative buckets: none of 25 or fewer, the 50 under le=50, all three under le=100.
    expect(delta('tim_tags_upstream_call_accounts_bucket', { ...getTag, le: '25' })).toBe(0);
    expect(delta('tim_tags_upstream_call_accounts_bucket', { ...getTag, le: '50' })).toBe(1);
    expect(delta('tim_tags_upstream_call_accounts_bucket', { ...getTag, le: '75' })).toBe(1);
    expect(delta('tim_tags_upstream_call_accounts_bucket', { ...getTag, le: '100' })).toBe(3);
    // Each call took one slot of the rate budget.
    expect(delta('tim_tags_budget_wait_seconds_count')).toBe(3);
    expect(delta('graphql_request_duration_seconds_count', { operation: 'Bulk', outcome: 'ok' })).toBe(1);
    expect(after.get('graphql_requests_in_flight')).toBe(0);
    // The durations are real: the sum of three calls is above zero and below the test's own time.
    const seconds = delta('tim_tags_upstream_call_duration_seconds_sum', ok);
    expect(seconds).toBeGreaterThan(0);
    expect(seconds).toBeLessThan(30);
  });

  it('counts a retried call: the failed attempt by its TIM code, the retry, and the good attempt', async () => {
    rig.emulator.injectFault({ errorCode: 91000, command: 'im_get_tag' }, { count: 1 });
    const before = await Scrape.of(rig);
    const res = await rig.query(ONE, { id: 'u3' });
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ user: { id: 'u3', tags: ['t3'] } });
    const after = await Scrape.of(rig);
    const delta = (name: string, labels: Record<string, string>) => after.get(name, labels) - before.get(name, labels);

    expect(callsOf(rig.emulator).map((c) => c.errorCode)).toEqual([91000, 0]);
    expect(
      delta('tim_tags_upstream_call_duration_seconds_count', { command: 'im_get_tag', outcome: 'fail', code: '91000' }),
    ).toBe(1);
    expect(
      delta('tim_tags_upstream_call_duration_seconds_count', { command: 'im_get_tag', outcome: 'ok', code: '0' }),
    ).toBe(1);
    expect(delta('tim_tags_upstream_retries_total', { command: 'im_get_tag', code: '91000' })).toBe(1);
    expect(delta('graphql_request_duration_seconds_count', { operation: 'One', outcome: 'ok' })).toBe(1);
  });

  it('labels a failed request with its error code, and an unnamed one as anonymous', async () => {
    rig.emulator.injectFault({ errorCode: 90001, command: 'im_get_tag' }, { count: 1 });
    const before = await Scrape.of(rig);
    const failed = await rig.query(ONE, { id: 'u4' });
    expect(failed.errors?.[0]?.extensions?.code).toBe('UPSTREAM_ERROR');
    const bad = await rig.query('{ user(id: "") { id tags } }');
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const after = await Scrape.of(rig);
    const delta = (name: string, labels: Record<string, string>) => after.get(name, labels) - before.get(name, labels);

    expect(delta('graphql_request_duration_seconds_count', { operation: 'One', outcome: 'UPSTREAM_ERROR' })).toBe(1);
    expect(delta('graphql_request_duration_seconds_count', { operation: 'anonymous', outcome: 'BAD_USER_INPUT' })).toBe(
      1,
    );
    expect(
      delta('tim_tags_upstream_call_duration_seconds_count', { command: 'im_get_tag', outcome: 'fail', code: '90001' }),
    ).toBe(1);
    // Not retryable: no retry counted.
    expect(after.sum('tim_tags_upstream_retries_total', { code: '90001' })).toBe(0);
  });

  it('counts writes by their own command', async () => {
    const before = await Scrape.of(rig);
    const res = await rig.query('mutation Tag { addUserTags(input: [{ id: "u9", tags: ["metrics"] }]) { id tags } }');
    expect(res.errors).toBeUndefined();
    const after = await Scrape.of(rig);
    const adds = callsOf(rig.emulator, 'im_add_tag');
    expect(adds).toHaveLength(1);
    const labels = { command: 'im_add_tag', outcome: 'ok', code: '0' };
    expect(
      after.get('tim_tags_upstream_call_duration_seconds_count', labels) -
        before.get('tim_tags_upstream_call_duration_seconds_count', labels),
    ).toBe(1);
    expect(after.get('graphql_request_duration_seconds_count', { operation: 'Tag', outcome: 'ok' })).toBe(1);
  });
});

describe('operation names as labels', () => {
  it('keeps plain names, calls the rest other, and stops adding names past the cap', () => {
    const metrics = new GatewayMetrics({ defaultMetrics: false });
    expect(metrics.operationLabel(null)).toBe('anonymous');
    expect(metrics.operationLabel('DemoUsers')).toBe('DemoUsers');
    expect(metrics.operationLabel('bad name {}')).toBe('other');
    expect(metrics.operationLabel('x'.repeat(65))).toBe('other');
    for (let i = 0; i < 500; i++) metrics.operationLabel(`Op${i}`);
    expect(metrics.operationLabel('Op0')).toBe('Op0');
    expect(metrics.operationLabel('Op499')).toBe('other');
    expect(metrics.operationLabel('DemoUsers')).toBe('DemoUsers');
  });
});

describe('cache, rate budget and circuit metrics', () => {
  const rigs: TestRig[] = [];
  afterAll(() => Promise.all(rigs.map((r) => r.close())));
  const start = async (env: Record<string, string>) => {
    const rig = await startRig({ emulator: { seed }, env });
    rigs.push(rig);
    return rig;
  };

  it('counts cache hits and misses per account, and a hit makes no upstream call', async () => {
    const rig = await start({ TAGS_CACHE_TTL_MS: '60000' });
    await rig.query(USERS, { ids: ids(3) });
    await rig.query(USERS, { ids: ids(3) });
    const scrape = await Scrape.of(rig);
    expect(callsOf(rig.emulator)).toHaveLength(1);
    expect(scrape.get('tim_tags_cache_lookups_total', { result: 'miss' })).toBe(3);
    expect(scrape.get('tim_tags_cache_lookups_total', { result: 'hit' })).toBe(3);
    expect(scrape.get('tim_tags_upstream_call_accounts_count', getTag)).toBe(1);
  });

  it('counts RATE_LIMITED lookups when the budget cannot serve them in time', async () => {
    // 3 calls at 1 per second cannot all leave within a 1 s request: what cannot is refused at once.
    const rig = await start({ TIM_MAX_QPS: '1', REQUEST_TIMEOUT_MS: '1000' });
    const res = await rig.query<{ users: Array<{ tags: string[] | null }> }>(USERS, { ids: ids(250) });
    const limited = (res.errors ?? []).filter((e) => e.extensions?.code === 'RATE_LIMITED');
    expect(limited.length).toBeGreaterThanOrEqual(150);
    expect(res.data!.users.filter((u) => u.tags === null)).toHaveLength(limited.length);
    const scrape = await Scrape.of(rig);
    expect(scrape.get('tim_tags_rate_limited_accounts_total')).toBe(limited.length);
    expect(scrape.get('graphql_request_duration_seconds_count', { operation: 'Bulk', outcome: 'RATE_LIMITED' })).toBe(
      1,
    );
    const served = 250 - limited.length;
    expect(scrape.get('tim_tags_upstream_call_accounts_sum', getTag)).toBe(served);
    expect(callsOf(rig.emulator).flatMap((c) => c.accounts)).toHaveLength(served);
  });

  it('shows the circuit open after repeated upstream failures, as /readyz does', async () => {
    const rig = await start({});
    rig.emulator.injectFault({ httpStatus: 503 }, { count: Infinity });
    for (let i = 0; i < 3 && (await fetch(`${rig.url}/readyz`)).status === 200; i++) {
      const res = await rig.query(ONE, { id: `u${i}` });
      expect(res.errors?.[0]?.extensions?.code).toBe('UPSTREAM_UNAVAILABLE');
    }
    expect((await fetch(`${rig.url}/readyz`)).status).toBe(503);
    const scrape = await Scrape.of(rig);
    expect(scrape.get('tim_tags_circuit_state', { state: 'open' })).toBe(1);
    expect(scrape.get('tim_tags_circuit_state', { state: 'closed' })).toBe(0);
    expect(scrape.get('tim_tags_circuit_transitions_total', { state: 'open' })).toBe(1);
    const failures = callsOf(rig.emulator).length;
    expect(failures).toBeGreaterThanOrEqual(5);
    expect(
      scrape.get('tim_tags_upstream_call_duration_seconds_count', {
        command: 'im_get_tag',
        outcome: 'unavailable',
        code: '0',
      }),
    ).toBe(failures);
    expect(scrape.sum('tim_tags_upstream_retries_total', { command: 'im_get_tag', code: '0' })).toBeGreaterThanOrEqual(
      3,
    );
  });

  it('counts a request refused before parsing by its code (a text/plain POST without the CSRF header)', async () => {
    const rig = rigs[0]!;
    const res = await fetch(`${rig.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ query: '{ user(id: "u1") { tags } }' }),
    });
    expect(res.status).toBe(403);
    const scrape = await Scrape.of(rig);
    expect(
      scrape.get('graphql_request_duration_seconds_count', { operation: 'anonymous', outcome: 'CSRF_HEADER_REQUIRED' }),
    ).toBe(1);
  });

  it('is served without a token when the gateway checks JWTs, and counts refused requests', async () => {
    const rig = await start({ AUTH_MODE: 'jwt', JWT_SECRET: 'a-test-secret-of-at-least-32-characters!' });
    const refused = await rig.query(ONE, { id: 'u1' });
    expect(refused.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    const scrape = await Scrape.of(rig);
    expect(scrape.sum('graphql_request_duration_seconds_count', { outcome: 'UNAUTHENTICATED' })).toBe(1);
    expect(scrape.sum('tim_tags_upstream_call_duration_seconds_count')).toBe(0);
  });

  it('keeps two gateways in one process apart: each counts only its own calls', async () => {
    const [a, b] = [rigs[0]!, rigs[1]!];
    await a.query(USERS, { ids: ids(120, 100) });
    const [sa, sb] = [await Scrape.of(a), await Scrape.of(b)];
    expect(sa.sum('tim_tags_upstream_call_duration_seconds_count')).toBe(a.emulator.calls.length);
    expect(sb.sum('tim_tags_upstream_call_duration_seconds_count')).toBe(b.emulator.calls.length);
    expect(a.emulator.calls.length).toBe(3);
    expect(sa.sum('tim_tags_upstream_call_duration_seconds_count')).not.toBe(
      sb.sum('tim_tags_upstream_call_duration_seconds_count'),
    );
  });
});
