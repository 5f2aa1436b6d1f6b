/**
 * The fast path (src/fast-path.ts) answers plain POSTs without yoga's HTTP pipeline, and runs a
 * query that ran before without its GraphQL pipeline either (src/prepared.ts): it must be
 * indistinguishable from yoga. Two gateways on one emulator, one with the fast path and one
 * without, get the same requests in the same order, each twice (the first time a query runs
 * through the pipeline, the second it is prepared); status, headers, body, the upstream calls
 * and every metric must come out the same, and the fast one must have answered the plain ones
 * itself, the prepared ones without the pipeline.
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
  /** Whether, sent again, it runs as a prepared query (else through the pipeline, or not at all). */
  prepared?: boolean;
  /** Done before each send: a fault for the upstream call it makes. */
  before?: () => void;
  /** A code its answer must show, so that the case is what it says. */
  shows?: string;
}

const bearer = (jwt: string) => ({ authorization: `Bearer ${jwt}` });
const CASES: Case[] = [
  {
    name: 'own user',
    headers: () => ({ ...JSON_TYPE, ...bearer(alice) }),
    body: body(USER, { id: 'alice' }),
    plain: true,
    prepared: true,
  },
  {
    name: "the caller's request id",
    headers: () => ({ ...JSON_TYPE, ...bearer(alice), 'x-request-id': 'caller-given.id-42' }),
    body: body(USER, { id: 'alice' }),
    plain: true,
    prepared: true,
  },
  {
    name: 'own user, graphql-response+json',
    headers: () => ({ ...JSON_TYPE, ...bearer(alice), accept: 'application/graphql-response+json' }),
    body: body(USER, { id: 'alice' }),
    plain: true,
    prepared: true,
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
    prepared: true,
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
    prepared: plain as boolean,
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
    prepared: true,
  },
  {
    name: 'variables that do not coerce, application/json',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body(USER, { id: null }),
    plain: true,
    prepared: true,
    shows: 'BAD_USER_INPUT',
  },
  {
    name: 'a bad id (an error from the resolver)',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body(USER, { id: '' }),
    plain: true,
    prepared: true,
    shows: 'BAD_USER_INPUT',
  },
  {
    name: 'tags and attributes, through a fragment, the operation named',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body(
      'query Both($ids: [ID!]!) { users(ids: $ids) { ...F } } fragment F on User { id tags attributes { name value } }',
      { ids: ['alice', 'bob'] },
      'Both',
    ),
    plain: true,
    prepared: true,
  },
  {
    name: 'an upstream that refuses the call',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body(USER, { id: 'dave' }),
    plain: true,
    prepared: true,
    before: () => emulator.injectFault({ command: 'im_get_tag', errorCode: 90001 }, { count: 1 }),
    shows: 'UPSTREAM_ERROR',
  },
  {
    name: "a name that is not the operation's",
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body(USER, { id: 'alice' }, 'Nope'),
    plain: true,
  },
  {
    name: 'own user, then a list over its bound in the same document',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body('query U($ids: [ID!]!) { users(ids: $ids) { id } }', { ids: ['alice'] }),
    plain: true,
    prepared: true,
  },
  {
    name: 'a list over its bound',
    headers: () => ({ ...JSON_TYPE, ...bearer(reader) }),
    body: body('query U($ids: [ID!]!) { users(ids: $ids) { id } }', { ids: Array.from({ length: 20_000 }, () => 'x') }),
    plain: true,
    // Kept (the case before ran it), but refused by its list bounds: the pipeline answers it.
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
    for (const round of [1, 2]) {
      const answeredBefore = fast.gateway.fastPath!.answered;
      const preparedBefore = fast.gateway.prepared!.ran;
      const callsBefore = emulator.calls.length;
      c.before?.();
      const viaFast = await send(fast.url, c.headers(), c.body);
      const fastCalls = emulator.calls.slice(callsBefore).map((call) => [call.command, call.accounts]);
      const callsBetween = emulator.calls.length;
      c.before?.();
      const viaYoga = await send(slow.url, c.headers(), c.body);
      const yogaCalls = emulator.calls.slice(callsBetween).map((call) => [call.command, call.accounts]);

      expect(comparable(viaFast)).toEqual(comparable(viaYoga));
      if (c.shows) expect(viaFast.body).toContain(`"code":"${c.shows}"`);
      const given = c.headers()['x-request-id'];
      if (given) expect([viaFast.headers['x-request-id'], viaYoga.headers['x-request-id']]).toEqual([given, given]);
      expect(fastCalls).toEqual(yogaCalls);
      expect(fast.gateway.fastPath!.answered - answeredBefore).toBe(c.plain ? 1 : 0);
      // A query runs prepared once it has run: the second time (the first too when an earlier case ran it).
      if (round === 2) expect(fast.gateway.prepared!.ran - preparedBefore).toBe(c.prepared ? 1 : 0);
      else if (!c.prepared) expect(fast.gateway.prepared!.ran - preparedBefore).toBe(0);
      expect(viaFast.body).not.toMatch(/\bat .+\.(?:js|ts):\d+|node_modules/);
    }
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
    expect(fast.gateway.prepared!.ran).toBeGreaterThan(CASES.length / 2);
  });
});
