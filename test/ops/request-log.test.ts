/** Issue 7: one structured log line per GraphQL request, carrying the request id the response carries. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { startRig, type TestRig } from '../helpers/gateway.js';

interface LogLine {
  level: number;
  msg: string;
  requestId?: string;
  operation?: string;
  outcome?: string;
  status?: number;
  durationMs?: number;
  upstream?: Record<string, unknown>;
}

const INFO = 30;
const DEBUG = 20;

let rig: TestRig;
const raw: string[] = [];
const lines = () => raw.map((l) => JSON.parse(l) as LogLine);
const requestLines = () => lines().filter((l) => l.msg === 'graphql request');

beforeAll(async () => {
  // Every line the gateway logs, collected here instead of a file.
  const logger = createLogger('debug', { destination: { write: (line: string) => void raw.push(line) } });
  rig = await startRig({ gateway: { logger }, env: { GRAPHIQL: 'true' } });
});
afterAll(() => rig.close());
beforeEach(() => {
  raw.length = 0;
});

describe('request logs', () => {
  it("logs each GraphQL request once at info, with the caller's x-request-id, which the response carries too", async () => {
    const res = await rig.query('query DemoAlice { user(id: "alice") { id tags } }', undefined, {
      'x-request-id': 'ops-test-42',
    });
    expect(res.errors).toBeUndefined();
    expect(res.headers.get('x-request-id')).toBe('ops-test-42');

    const [line, ...more] = requestLines();
    expect(more).toEqual([]);
    expect(line).toMatchObject({
      level: INFO,
      requestId: 'ops-test-42',
      operation: 'DemoAlice',
      outcome: 'ok',
      status: 200,
    });
    expect(line!.durationMs).toBeGreaterThan(0);
    expect(line!.durationMs).toBeLessThan(30_000);
  });

  it('makes up an id when none (or an unsafe one) is given, and logs the same id it sends back', async () => {
    const res = await rig.query('{ user(id: "bob") { tags } }', undefined, { 'x-request-id': 'bad id {"forged":1}' });
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(requestLines()).toMatchObject([{ requestId: id, outcome: 'ok' }]);
    expect(raw.join('')).not.toContain('forged');
    const none = await rig.query('{ user(id: "bob") { tags } }');
    expect(none.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(none.headers.get('x-request-id')).not.toBe(id);
  });

  it('logs the error code as the outcome of a failed request', async () => {
    const res = await rig.query('query Broken { user(id: "") { tags } }');
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(requestLines()).toMatchObject([{ operation: 'Broken', outcome: 'BAD_USER_INPUT' }]);
  });

  it('logs each upstream call at debug, without its usersig', async () => {
    await rig.query('{ users(ids: ["carol", "dave"]) { tags } }');
    const upstream = lines().filter((l) => l.msg === 'upstream call');
    expect(upstream).toHaveLength(1);
    expect(upstream[0]).toMatchObject({
      level: DEBUG,
      upstream: { command: 'im_get_tag', accounts: 2, outcome: 'ok' },
    });
    expect(raw.join('')).not.toMatch(/usersig/i);
    expect(raw.join('')).not.toContain(rig.secretKey);
  });

  it('does not log /metrics, /healthz or the GraphiQL page as GraphQL requests', async () => {
    await fetch(`${rig.url}/metrics`);
    await fetch(`${rig.url}/healthz`);
    const page = await fetch(`${rig.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    await page.text();
    expect(requestLines()).toEqual([]);
  });
});
