/**
 * Issue 10: traces over OTLP/HTTP with the real exporter, into a receiver this
 * test runs: one span per operation, one child per upstream call attempt, the
 * caller's traceparent continued, coalesced calls linked, and no credential in
 * any span.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { startRig, type TestRig } from '../helpers/gateway.js';

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  status?: { code?: number; message?: string };
  attributes?: Array<{ key: string; value: OtlpValue }>;
  links?: Array<{ traceId: string; spanId: string }>;
}
interface OtlpExport {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string; value: OtlpValue }> };
    scopeSpans: Array<{ spans: OtlpSpan[] }>;
  }>;
}

/** Every body the exporter posted, raw (for the leak scan) and decoded. */
const bodies: string[] = [];
const paths: string[] = [];
let receiver: Server;
let rig: TestRig;
const logLines: string[] = [];
let spans: OtlpSpan[] = [];

const ids = (n: number) => Array.from({ length: n }, (_, i) => `u${i}`);
const attr = (span: OtlpSpan, key: string): string | number | undefined => {
  const v = span.attributes?.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  return v.stringValue ?? (v.intValue === undefined ? undefined : Number(v.intValue));
};
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const USERS = 'query Users($ids: [ID!]!) { users(ids: $ids) { id tags } }';
/** Operations sent through both paths: one that succeeds, one that fails validation, one that does not parse. */
const SAME = [
  'query Same { user(id: "u10") { id tags } }',
  'query Bad { user(id: "u10") { nope } }',
  'query Broken { user(id: ',
];
/** Trace ids (31 hex digits, the case's index appended) of the same operations through each path. */
const FAST_TRACE = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const YOGA_TRACE = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
let fastAnswered = 0;
let preparedRan = 0;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      paths.push(`${req.method} ${req.url} ${req.headers['content-type']}`);
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const logger = createLogger('debug', { destination: { write: (line: string) => void logLines.push(line) } });
  rig = await startRig({
    gateway: { logger },
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'tags-under-test' },
    emulator: { seed: ids(300).map((id) => ({ To_Account: id, Tags: ['t'] })) },
  });

  // 1. 150 users: one operation, two calls.
  expect((await rig.query(USERS, { ids: ids(150) })).errors).toBeUndefined();
  // 2. A caller's traceparent.
  const continued = await rig.query(USERS, { ids: ['u1'] }, { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` });
  expect(continued.errors).toBeUndefined();
  // 3. Two requests that queue behind a third's call share one: at 1 call a second, once W's call has left,
  // A and B wait a second for the next slot, whenever each arrives.
  const slow = await startRig({
    gateway: { logger },
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'tags-under-test', TIM_MAX_QPS: '1' },
    sharedEmulator: rig,
  });
  const w = slow.query('query W { user(id: "u201") { tags } }');
  while (!rig.emulator.calls.some((c) => c.accounts.includes('u201'))) await new Promise((r) => setTimeout(r, 5));
  const both = await Promise.all([
    slow.query('query A { user(id: "u200") { tags } }'),
    slow.query('query B { user(id: "u200") { tags } }'),
  ]);
  expect(both.map((r) => r.errors)).toEqual([undefined, undefined]);
  expect((await w).errors).toBeUndefined();
  await slow.close();
  // 4. A retried call: two attempts, the first with TIM's ErrorCode.
  rig.emulator.injectFault({ errorCode: 91000 }, { count: 1 });
  expect((await rig.query('query Retried { user(id: "u250") { tags } }')).errors).toBeUndefined();

  // 5. The same operations through the fast path (a plain POST) and through yoga's own path (a GET), each in a
  // trace of its own: their spans must come out alike. The query that works has run once before, so the fast
  // path runs it prepared (src/prepared.ts).
  expect((await rig.query(SAME[0]!)).errors).toBeUndefined();
  const preparedBefore = rig.gateway.prepared!.ran;
  const before = rig.gateway.fastPath!.answered;
  for (const [i, query] of SAME.entries()) {
    // graphql-response+json: a document that fails is answered 400, so the status attribute tells them apart.
    const accept = 'application/graphql-response+json';
    await rig.query(query, undefined, { accept, traceparent: `00-${FAST_TRACE}${i}-${PARENT_ID}-01` });
    const url = `${rig.url}/graphql?query=${encodeURIComponent(query)}`;
    await fetch(url, {
      headers: { accept, traceparent: `00-${YOGA_TRACE}${i}-${PARENT_ID}-01` },
    });
  }
  fastAnswered = rig.gateway.fastPath!.answered - before;
  preparedRan = rig.gateway.prepared!.ran - preparedBefore;

  // Closing the gateway shuts its tracer provider down, which sends what is buffered.
  await rig.close();
  spans = bodies.flatMap((b) =>
    (JSON.parse(b) as OtlpExport).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
  );
}, 60_000);
afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

const operation = (name: string) => spans.filter((s) => attr(s, 'graphql.operation.name') === name);
const callsUnder = (parent: OtlpSpan) => spans.filter((s) => s.parentSpanId === parent.spanId);

describe('OpenTelemetry traces', () => {
  it('exports OTLP/HTTP JSON to <endpoint>/v1/traces, as the configured service', () => {
    expect(paths.length).toBeGreaterThan(0);
    for (const p of paths) expect(p).toBe('POST /v1/traces application/json');
    const services = bodies.flatMap((b) =>
      (JSON.parse(b) as OtlpExport).resourceSpans.map(
        (r) => r.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue,
      ),
    );
    expect(new Set(services)).toEqual(new Set(['tags-under-test']));
  });

  it('makes one operation span for a 150-user query, with two upstream-call children carrying command and accounts', () => {
    const users = operation('Users').filter((s) => callsUnder(s).some((c) => attr(c, 'tim.accounts') === 100));
    expect(users).toHaveLength(1);
    const [op] = users;
    expect(op!.name).toBe('query Users');
    expect(attr(op!, 'graphql.operation.type')).toBe('query');
    const calls = callsUnder(op!);
    expect(calls).toHaveLength(2);
    for (const c of calls) {
      expect(c.traceId).toBe(op!.traceId);
      expect(c.name).toBe('TIM im_get_tag');
      expect(attr(c, 'tim.command')).toBe('im_get_tag');
      expect(attr(c, 'tim.attempt')).toBe(1);
      expect(attr(c, 'tim.budget_wait_ms')).toBeGreaterThanOrEqual(0);
      expect(attr(c, 'tim.error_code')).toBeUndefined();
    }
    expect(calls.map((c) => attr(c, 'tim.accounts')).sort()).toEqual([100, 50]);
  });

  it("continues an incoming W3C traceparent: the operation is the caller's span's child, in its trace", () => {
    const [op] = spans.filter((s) => s.traceId === TRACE_ID && s.parentSpanId === PARENT_ID);
    expect(op).toBeDefined();
    expect(attr(op!, 'graphql.operation.name')).toBe('Users');
    expect(callsUnder(op!)).toHaveLength(1);
    expect(callsUnder(op!)[0]!.traceId).toBe(TRACE_ID);
  });

  it('links a coalesced call to every request it serves', () => {
    const [a] = operation('A');
    const [b] = operation('B');
    const calls = spans.filter((s) => s.links?.some((l) => l.spanId === a!.spanId));
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(attr(call!, 'tim.requests')).toBe(2);
    expect(attr(call!, 'tim.accounts')).toBe(1);
    expect(call!.links!.map((l) => [l.traceId, l.spanId]).sort()).toEqual(
      [
        [a!.traceId, a!.spanId],
        [b!.traceId, b!.spanId],
      ].sort(),
    );
    // It sits in the first request's trace, as that operation's child.
    expect([a!.spanId, b!.spanId]).toContain(call!.parentSpanId);
    expect(spans.find((s) => s.spanId === call!.parentSpanId)?.traceId).toBe(call!.traceId);
  });

  it("records each attempt of a retried call, the failed one with TIM's ErrorCode", () => {
    const [op] = operation('Retried');
    const attempts = callsUnder(op!).sort((x, y) => Number(attr(x, 'tim.attempt')) - Number(attr(y, 'tim.attempt')));
    expect(attempts.map((c) => [attr(c, 'tim.attempt'), attr(c, 'tim.error_code')])).toEqual([
      [1, 91000],
      [2, undefined],
    ]);
  });

  it("gives a request the fast path answers the same span as yoga's own path would, prepared or not", () => {
    expect(fastAnswered).toBe(SAME.length);
    expect(preparedRan).toBe(1);
    const shape = (traceId: string) => {
      const found = spans.filter((s) => s.traceId === traceId && s.parentSpanId === PARENT_ID);
      expect(found).toHaveLength(1);
      const { name, kind, status, attributes } = found[0]!;
      return { name, kind, status, attributes: [...(attributes ?? [])].sort((x, y) => x.key.localeCompare(y.key)) };
    };
    for (const i of SAME.keys()) {
      const fast = shape(`${FAST_TRACE}${i}`);
      expect(fast.attributes.map((a) => a.key)).toContain('http.response.status_code');
      expect(fast).toEqual(shape(`${YOGA_TRACE}${i}`));
    }
  });

  it('puts the trace id in the request log line', () => {
    const lines = logLines.map((l) => JSON.parse(l) as { msg: string; traceId?: string; operation?: string });
    const continued = lines.filter((l) => l.msg === 'graphql request' && l.traceId === TRACE_ID);
    expect(continued).toHaveLength(1);
    const requestLines = lines.filter((l) => l.msg === 'graphql request');
    for (const l of requestLines) expect(l.traceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('holds no usersig, secret key, upstream query string or account list in any exported span', () => {
    const sigs = new Set(rig.emulator.calls.map((c) => c.query.usersig!));
    expect(sigs.size).toBeGreaterThan(0);
    const everything = bodies.join('\n');
    for (const sig of sigs) expect(everything).not.toContain(sig);
    expect(everything).not.toContain(rig.secretKey);
    expect(everything).not.toMatch(/usersig|sdkappid=|identifier=|contenttype|v4\/all_member_push/i);
    expect(everything).not.toContain('"u149"');
  });
});

describe('without OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  it('starts no SDK, exports nothing and logs no trace id', async () => {
    const before = bodies.length;
    const lines: string[] = [];
    const logger = createLogger('info', { destination: { write: (line: string) => void lines.push(line) } });
    const plain = await startRig({ gateway: { logger }, emulator: { seed: [{ To_Account: 'u1', Tags: ['t'] }] } });
    try {
      expect(plain.gateway.tracing.tracer).toBeNull();
      const res = await plain.query('{ user(id: "u1") { tags } }', undefined, {
        traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`,
      });
      expect(res.data).toEqual({ user: { tags: ['t'] } });
    } finally {
      await plain.close();
    }
    expect(bodies.length).toBe(before);
    const request = lines.map((l) => JSON.parse(l) as { msg: string }).filter((l) => l.msg === 'graphql request');
    expect(request).toHaveLength(1);
    expect(request[0]).not.toHaveProperty('traceId');
  });
});
