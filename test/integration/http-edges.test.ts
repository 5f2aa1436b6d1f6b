/**
 * GraphQL over HTTP at its edges, as a black-box client meets them: whatever the method,
 * path, content type, Accept header, request target or Host, the answer is a 4xx (or 2xx)
 * with `x-request-id`, a JSON body whose every error carries `extensions.code`, and no
 * stack; and nothing reaches the upstream.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRig, type TestRig } from '../helpers/gateway.js';

let rig: TestRig;

beforeAll(async () => {
  rig = await startRig({ env: { GRAPHIQL: 'true' } });
});
afterAll(() => rig.close());
beforeEach(() => rig.emulator.resetCalls());

interface Answer {
  status: number;
  headers: Headers | Map<string, string>;
  body: string;
}

/** A refusal: 4xx, a request id, JSON errors that each carry a code, no stack, no upstream call. */
function expectCodedRefusal(answer: Answer, status: number, code?: string): void {
  const what = `${answer.status} ${answer.body.slice(0, 300)}`;
  expect(answer.status, what).toBe(status);
  expect(answer.headers.get('x-request-id'), what).toBeTruthy();
  expect(answer.body, what).not.toMatch(/\bat .+\.(?:js|ts):\d+|node_modules|TypeError/);
  const parsed = JSON.parse(answer.body) as { errors?: Array<{ message: string; extensions?: { code?: unknown } }> };
  expect(parsed.errors?.length, what).toBeGreaterThan(0);
  for (const error of parsed.errors!) expect(typeof error.extensions?.code, what).toBe('string');
  if (code) expect(parsed.errors![0]!.extensions!.code, what).toBe(code);
  expect(rig.emulator.calls).toEqual([]);
}

async function send(path: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(`${rig.url}${path}`, init);
  return { status: res.status, headers: res.headers, body: await res.text() };
}

const READ = 'query($id: ID!) { user(id: $id) { tags } }';
const search = (params: Record<string, string>) => `/graphql?${new URLSearchParams(params)}`;

describe('malformed parameters', () => {
  it.each([
    ['variables', { query: READ, variables: '{"id": "alice"' }],
    ['extensions', { query: '{ __typename }', extensions: '{nope' }],
  ])('answers a GET whose %s are not JSON with 400 BAD_REQUEST, not a 500', async (_what, params) => {
    expectCodedRefusal(await send(search(params), { headers: { accept: 'application/json' } }), 400, 'BAD_REQUEST');
  });

  it.each([5, true, {}, ['Q']])(
    'answers an operationName of %j (not a string) with a coded 400, not a 500',
    async (operationName) => {
      const res = await send('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: 'query Q { user(id: "alice") { tags } }', operationName }),
      });
      expectCodedRefusal(res, 400);
    },
  );

  it('answers a form POST whose variables are not JSON with 400 BAD_REQUEST', async () => {
    const body = new URLSearchParams({ query: READ, variables: '{bad' }).toString();
    const headers = {
      'content-type': 'application/x-www-form-urlencoded',
      'x-graphql-yoga-csrf': '1',
      accept: 'application/json',
    };
    expectCodedRefusal(await send('/graphql', { method: 'POST', headers, body }), 400, 'BAD_REQUEST');
  });

  it('refuses a multipart POST (the API takes no uploads) with a code', async () => {
    const form = new FormData();
    form.set('operations', '{bad');
    form.set('map', '{}');
    const res = await send('/graphql', { method: 'POST', headers: { 'x-graphql-yoga-csrf': '1' }, body: form });
    expectCodedRefusal(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });

  it('refuses a body of a type it does not read with 415 and a code', async () => {
    const headers = { 'content-type': 'application/xml', 'x-graphql-yoga-csrf': '1' };
    expectCodedRefusal(
      await send('/graphql', { method: 'POST', headers, body: '<query/>' }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
  });
});

describe('operations', () => {
  // As for any invalid document, the status is 200 to a client that accepts only application/json.
  it.each([
    ['application/json', 200],
    ['application/graphql-response+json', 400],
  ])(
    'refuses a subscription (the schema has none) as an invalid document with a code, accepting %s',
    async (accept, status) => {
      const res = await send('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept },
        body: JSON.stringify({ query: 'subscription { __typename }' }),
      });
      expectCodedRefusal(res, status, 'GRAPHQL_VALIDATION_FAILED');
    },
  );

  it('refuses a subscription sent by GET, or asked for as an event stream, the same way', async () => {
    const res = await send(search({ query: 'subscription S { __typename }' }), {
      headers: { accept: 'application/graphql-response+json' },
    });
    expectCodedRefusal(res, 400, 'GRAPHQL_VALIDATION_FAILED');
    const stream = await send('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ query: 'subscription { __typename }' }),
    });
    expect(stream.body).toMatch(/GRAPHQL_VALIDATION_FAILED/);
  });
});

describe('methods, paths and Accept', () => {
  it.each(['/nope', '/graphqlx', '/metrics/x', '/'])('answers an unknown path %s with 404 NOT_FOUND', async (path) => {
    expectCodedRefusal(await send(path), 404, 'NOT_FOUND');
    expectCodedRefusal(
      await send(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
      404,
      'NOT_FOUND',
    );
  });

  it('answers an Accept it cannot meet with 406 and a JSON error saying what it serves', async () => {
    const res = await send('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/xml' },
      body: JSON.stringify({ query: '{ __typename }' }),
    });
    expectCodedRefusal(res, 406, 'NOT_ACCEPTABLE');
    expect(JSON.parse(res.body).errors[0].message).toMatch(/application\/json/);
  });

  it.each(['HEAD', 'OPTIONS', 'DELETE', 'PUT'])(
    'answers %s /graphql with 405 and Allow, not a CSRF refusal',
    async (method) => {
      const res = await fetch(`${rig.url}/graphql`, { method });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe('GET, POST');
      expect(res.headers.get('x-request-id')).toBeTruthy();
      if (method !== 'HEAD')
        expectCodedRefusal({ status: res.status, headers: res.headers, body: await res.text() }, 405, 'BAD_REQUEST');
    },
  );

  it.each(['/healthz', '/readyz', '/metrics'])('answers HEAD %s as it answers GET', async (path) => {
    const [head, get] = [await fetch(`${rig.url}${path}`, { method: 'HEAD' }), await fetch(`${rig.url}${path}`)];
    expect(head.status).toBe(200);
    expect(head.status).toBe(get.status);
    expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'));
    expect(head.headers.get('x-request-id')).toBeTruthy();
  });

  it('still refuses a simple cross-site POST as CSRF', async () => {
    const res = await send('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({ query: READ }),
    });
    expectCodedRefusal(res, 403, 'CSRF_HEADER_REQUIRED');
  });
});

/** Sends raw bytes and reads the whole answer (the connection is closed by the request). */
function raw(request: string): Promise<Answer> {
  const { port } = new URL(rig.url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1');
    let text = '';
    socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('end', () => {
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = new Map(
        lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
      );
      let body = rest.join('\r\n\r\n');
      // Decode a chunked body well enough for a JSON answer.
      if (headers.get('transfer-encoding') === 'chunked')
        body = body
          .split('\r\n')
          .filter((_l, i) => i % 2 === 1)
          .join('');
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
    socket.write(request);
  });
}

describe('request targets and Host', () => {
  it.each([
    ['a space', 'a b'],
    ['a bad port', 'a:b'],
    ['a bad escape', 'a%zz'],
    ['a bracket', '['],
    ['a path', 'a/b'],
  ])('answers a Host with %s with 400, not a 500 with a stack', async (_what, host) => {
    const res = await raw(`GET /healthz HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    expectCodedRefusal(res, 400, 'BAD_REQUEST');
  });

  it('answers an HTTP/1.1 request without Host with a coded 400', async () => {
    expectCodedRefusal(await raw('GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n'), 400, 'BAD_REQUEST');
  });

  it('answers OPTIONS * without a stack', async () => {
    const res = await raw('OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    expect(res.status).toBe(204);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(res.body).toBe('');
  });

  it('serves a request in absolute form (RFC 9112 says a server must accept it)', async () => {
    const target = `http://localhost${search({ query: '{ user(id: "alice") { tags } }' })}`;
    const res = await raw(
      `GET ${target} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n\r\n`,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBeTruthy();
    expect(JSON.parse(res.body)).toEqual({ data: { user: { tags: expect.any(Array) } } });
  });

  it('answers request headers over the size limit with 431, a request id and a code', async () => {
    const res = await raw(`GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`);
    expectCodedRefusal(res, 431, 'REQUEST_HEADER_FIELDS_TOO_LARGE');
  });

  it('is still healthy afterwards', async () => {
    const res = await send('/healthz');
    expect(res.status).toBe(200);
  });
});

describe('an internal failure', () => {
  it('is masked without its stack even when NODE_ENV=development (yoga would otherwise add it to the answer)', async () => {
    const tags = rig.gateway.services.upstream.tags;
    const get = tags.get;
    const before = process.env.NODE_ENV;
    tags.get = async () => {
      throw new Error('internal bug with a secret in its message');
    };
    process.env.NODE_ENV = 'development';
    try {
      const res = await rig.query('{ user(id: "alice") { tags } }');
      expect(res.status).toBe(200);
      expect(res.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
      expect(res.body).not.toMatch(/stack|secret|\.ts:\d+/);
    } finally {
      process.env.NODE_ENV = before;
      tags.get = get;
    }
  });
});
