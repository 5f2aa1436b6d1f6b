/**
 * The fast path (src/fast-path.ts) answers plain POSTs without yoga's HTTP pipeline: it must be
 * indistinguishable from yoga. Two gateways on one emulator, one with the fast path and one
 * without, get the same requests in the same order; status, headers, body, the upstream calls
 * and every metric must come out the same, and the fast one must have answered the plain ones
 * itself.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TimEmulator } from '../../src/emulator/index.js';
import { ADMIN, SDKAPPID, startRig, type TestRig } from '../helpers/gateway.js';
import { AUDIENCE, ISSUER, JWT_SECRET, token } from '../security/tokens.js';

let emulator: TimEmulator;
let fast: TestRig;
let slow: TestRig;
let alice: string;
let reader: string;
let writer: string;

beforeAll(async () => {
  const secretKey = randomBytes(24).toString('hex');
  emulator = await TimEmulator.start({ sdkappid: SDKAPPID, secretKey, adminIdentifier: ADMIN, port: 0, seed: 'demo' });
  const env = { AUTH_MODE: 'jwt', JWT_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE, LOG_LEVEL: 'info' };
  const shared = { emulator, secretKey };
  [fast, slow] = await Promise.all([
    startRig({ env, sharedEmulator: shared }),
    startRig({ env, sharedEmulator: shared, gateway: { fastPath: false } }),
  ]);
  [alice, reader, writer] = await Promise.all([
    token({ sub: 'alice' }),
    token({ sub: 'ops', scope: 'tags:read' }),
    token({ sub: 'ops', scope: 'tags:read tags:write' }),
  ]);
});
afterAll(async () => {
  await Promise.all([fast?.close(), slow?.close()]);
  await emulator?.close();
});

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One raw HTTP/1.1 request, so that what is compared is what went over the wire. */
function send(url: string, headers: Record<string, string>, body: string): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/graphql`, {
      method: 'POST',
      headers: { ...headers, 'content-length': Buffer.byteLength(body) },
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.end(body);
  });
}

/** Headers that differ between any two answers: the clock, and a fresh request id (checked for presence). */
function comparable(raw: Raw) {
  const { date: _date, 'x-request-id': id, ...headers } = raw.headers;
  expect(id).toMatch(/^[\w.:@/+=-]{8,128}$/);
  return { status: raw.status, headers, body: raw.body };
}

const JSON_TYPE = { 'content-type': 'application/json' };
const body = (query: string, variables?: Record<string, unknown>, operationName?: string) =>
  JSON.stringify({ query, variables, operationName });
const USER = 'query User($id: ID!) { user(id: $id) { id tags } }';

interface Case {
  name: string;
  headers: () => Record<string, string>;
  body: string;
  /** Whether the fast path answers it itself (else it hands it to yoga). */
  plain: boolean;
}

const bearer = (jwt: string) => ({ authorization: `Bearer ${jwt}` });
const CASES: Case[] = [
  {
    name: 'own user',
    headers: () => ({ ...JSON_TYPE, ...bearer(alice) }),
    body: body(USER, { id: 'alice' }),
    plain: true,
  },
  {
    name: "the caller's request id",
    headers: () => ({ ...JSON_TYPE, ...bearer(alice), 'x-request-id': 'caller-given.id-42' }),
    body: body(USER, { id: 'alice' }),
    plain: true,
  },
  {
    name: 'own user, graphql-response+json',
    headers: () => ({ ...JSON_TYPE, ...bearer(alice), accept: 'application/graphql-response+json' }),
    body: body(USER, { id: 'alice' }),
    plain: true,
  },
  {
    name: 'charset and a mixed Accept',
    headers: () => ({
      'content-type': 'application/json; charset=utf-8',
      ...bearer(reader),
      accept: 'application/graphql-response+json, application/json;q=0.9, */*;q=0.1',
    }),
    body: body('{ users(ids: ["alice", "bob", "nobody-here"]) { id tags } }'),
    plain: true,
  },
  { name: 'no token', headers: () => JSON_TYPE, body: body(USER, { id: 'alice' }), plain: true },
  ...[
    ['application/graphql+json', true],
    ['application/json;foo=bar', true],
    ['application/json, text/plain', true],
    ['APPLICATION/JSON', false],
    ['application/json ; charset=utf-8', false],
    ['text/plain', false],
  ].map(([type, plain]) => ({
    name: `content type ${type as string}${plain ? '' : ' (handed to yoga)'}`,
    headers: () => ({ 'content-type': type as string, ...bearer(alice) }),
    body: body(USER, { id: 'alice' }),
    plain: plain as boolean,
  })),
  {
    name: 'no token, graphql-response+json',
    headers: () => ({ ...JSON_TYPE, accept: 'application/graphql-response+json' }),
    body: body(USER, { id: 'alice' }),
    plain: true,
  },
  {
    name: 'a bad token',
    headers: () => ({ ...JSON_TYPE, authorization: 'Bearer a.b.c' }),
    body: body(USER, { id: 'alice' }),
    plain: true,
  },
  {
    name: "another's user",
    headers: () => ({ ...JSON_TYPE, ...bearer(alice) }),
    body: body(USER, { id: 'bob' }),
    plain: true,
  },
  {
    name: 'a field that does not exist',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader), accept: 'application/graphql-response+json' }),
    body: body('{ user(id: "alice") { id nope } }'),
    plain: true,
  },
  {
    name: 'a syntax error',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body('{ user(id: '),
    plain: true,
  },
  {
    name: 'variables that do not coerce',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader), accept: 'application/graphql-response+json' }),
    body: body(USER, { id: ['a', 'b'] }),
    plain: true,
  },
  {
    name: 'a list over its bound',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body('query U($ids: [ID!]!) { users(ids: $ids) { id } }', { ids: Array.from({ length: 20_000 }, () => 'x') }),
    plain: true,
  },
  {
    name: 'two operations, the second named',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body('query A { user(id: "alice") { id } } query B { user(id: "bob") { tags } }', undefined, 'B'),
    plain: true,
  },
  {
    name: 'two operations, none named',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader), accept: 'application/graphql-response+json' }),
    body: body('query A { user(id: "alice") { id } } query B { user(id: "bob") { tags } }'),
    plain: true,
  },
  {
    name: 'introspection while it is off',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body('{ __schema { types { name } } }'),
    plain: true,
  },
  {
    name: 'a subscription',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body('subscription { user(id: "alice") { id } }'),
    plain: true,
  },
  {
    name: 'a mutation',
    headers: () => ({ ...JSON_TYPE, ...bearer(writer) }),
    body: body('mutation { addUserTags(input: [{ id: "carol", tags: ["fast-path"] }]) { id tags } }'),
    plain: true,
  },
  {
    name: 'a mutation without the scope',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body('mutation { addUserTags(input: [{ id: "carol", tags: ["nope"] }]) { id } }'),
    plain: true,
  },
  {
    name: 'extensions (handed to yoga)',
    headers: () => ({ ...JSON_TYPE, ...bearer(alice) }),
    body: JSON.stringify({ query: USER, variables: { id: 'alice' }, extensions: {} }),
    plain: false,
  },
  {
    name: 'JSON that does not parse (handed to yoga)',
    headers: () => ({ ...JSON_TYPE, ...bearer(alice) }),
    body: '{"query": ',
    plain: false,
  },
  {
    name: 'an empty body (handed to yoga)',
    headers: () => ({ ...JSON_TYPE, ...bearer(alice) }),
    body: '',
    plain: false,
  },
  {
    name: 'a batch (handed to yoga)',
    headers: () => ({ ...JSON_TYPE, ...bearer(alice) }),
    body: JSON.stringify([{ query: USER, variables: { id: 'alice' } }]),
    plain: false,
  },
  {
    name: 'an unknown parameter (handed to yoga)',
    headers: () => ({ ...JSON_TYPE, ...bearer(alice) }),
    body: JSON.stringify({ query: USER, variables: { id: 'alice' }, extra: 1 }),
    plain: false,
  },
  {
    name: 'variables that are not an object (handed to yoga)',
    headers: () => ({ ...JSON_TYPE, ...bearer(alice) }),
    body: JSON.stringify({ query: USER, variables: '{"id": "alice"}' }),
    plain: false,
  },
];

describe('the fast path', () => {
  it.each(CASES)('answers as yoga does: $name', async (c) => {
    const answeredBefore = fast.gateway.fastPath!.answered;
    const callsBefore = emulator.calls.length;
    const viaFast = await send(fast.url, c.headers(), c.body);
    const fastCalls = emulator.calls.slice(callsBefore).map((call) => [call.command, call.accounts]);
    const callsBetween = emulator.calls.length;
    const viaYoga = await send(slow.url, c.headers(), c.body);
    const yogaCalls = emulator.calls.slice(callsBetween).map((call) => [call.command, call.accounts]);

    expect(comparable(viaFast)).toEqual(comparable(viaYoga));
    const given = c.headers()['x-request-id'];
    if (given) expect([viaFast.headers['x-request-id'], viaYoga.headers['x-request-id']]).toEqual([given, given]);
    expect(fastCalls).toEqual(yogaCalls);
    expect(fast.gateway.fastPath!.answered - answeredBefore).toBe(c.plain ? 1 : 0);
    expect(viaFast.body).not.toMatch(/\bat .+\.(?:js|ts):\d+|node_modules/);
  });

  it('counts every request in the same metrics as yoga does', async () => {
    const series = async (rig: TestRig) => {
      const text = await (await fetch(`${rig.url}/metrics`)).text();
      // Counts and label sets, not durations: those differ from run to run.
      return text
        .split('\n')
        .filter((line) => /^(graphql_|tim_tags_graphql_)\S*(_count|_total)\b/.test(line))
        .filter((line) => !line.includes('upstream'))
        .sort();
    };
    const [viaFast, viaYoga] = await Promise.all([series(fast), series(slow)]);
    expect(viaFast.length).toBeGreaterThan(5);
    expect(viaFast.some((line) => line.startsWith('graphql_yoga_http_duration_count'))).toBe(true);
    expect(viaFast).toEqual(viaYoga);
  });

  it('is there unless the gateway is started without it', () => {
    expect(slow.gateway.fastPath).toBeNull();
    expect(fast.gateway.fastPath).not.toBeNull();
  });
});
