/**
 * Issue 15: the attacks that got through, tried again over HTTP against the real server: repeated
 * ids, overload, a read through a write, a foreign Host, introspection floods, deep literals, slow
 * clients and long echoes.
 */
import { createServer, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { getIntrospectionQuery } from 'graphql';
import { createSchema, createYoga } from 'graphql-yoga';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { useDeadlineBackstop } from '../../src/plugins/deadline.js';
import { postGraphQL, startRig, type TestRig } from '../helpers/gateway.js';
import { bearer, JWT_SECRET, token } from './tokens.js';

let rig: TestRig;
let guarded: TestRig;

beforeAll(async () => {
  rig = await startRig({ env: { GRAPHQL_INTROSPECTION: 'true' } });
  guarded = await startRig({
    env: { AUTH_MODE: 'jwt', JWT_SECRET },
    sharedEmulator: { emulator: rig.emulator, secretKey: rig.secretKey },
  });
});
afterAll(async () => {
  await guarded?.close();
  await rig?.close();
});
beforeEach(() => {
  rig.emulator.resetCalls();
  rig.emulator.clearFaults();
});

const plain = { issuer: null, audience: null };
const USERS = 'query($ids: [ID!]!) { users(ids: $ids) { id tags } }';

/** Sends a raw request with the Host header given (fetch may not set it). */
function withHost(url: string, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { headers: { host, accept: 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('repeated ids', () => {
  it('refuses 48 concurrent requests of 31,000 repeated ids quickly, while a light request is answered within 2 s', async () => {
    const auth = bearer(await token({ ...plain, sub: 'alice' }));
    const ids = Array.from({ length: 31_000 }, () => 'alice');
    const started = performance.now();
    const attack = Array.from({ length: 48 }, () =>
      postGraphQL(guarded.url, USERS, { ids }, auth).then((res) => ({ res, ms: performance.now() - started })),
    );
    await new Promise((r) => setTimeout(r, 20));
    const lightStarted = performance.now();
    const light = await guarded.query<{ user: { tags: string[] } }>('{ user(id: "alice") { tags } }', undefined, auth);
    const lightMs = performance.now() - lightStarted;
    const answers = await Promise.all(attack);

    expect(light.errors).toBeUndefined();
    expect(light.data!.user.tags).toEqual(rig.emulator.store.getTags('alice'));
    expect(lightMs).toBeLessThan(2000);
    for (const { res, ms } of answers) {
      expect(res.status).toBe(400);
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'ids', limit: 10_000 });
      expect(res.errors![0]!.message).toMatch(/"ids" holds a list of 31000 entries/);
      // Far inside REQUEST_TIMEOUT_MS (10 s): nothing queued behind the refused work.
      expect(ms).toBeLessThan(5000);
    }
    // Only the light request reached the upstream.
    expect(rig.emulator.calls.filter((c) => c.command === 'im_get_tag')).toHaveLength(1);
  });

  it('serves ten times MAX_IDS_PER_REQUEST entries of one id, in one upstream call, and refuses one more', async () => {
    const ok = await rig.query<{ users: unknown[] }>(USERS, { ids: Array.from({ length: 10_000 }, () => 'bob') });
    expect(ok.errors).toBeUndefined();
    expect(ok.data!.users).toHaveLength(10_000);
    expect(rig.emulator.calls).toHaveLength(1);
    rig.emulator.resetCalls();
    const over = await rig.query(USERS, { ids: Array.from({ length: 10_001 }, () => 'bob') });
    expect(over.status).toBe(400);
    expect(over.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'ids' });
    expect(rig.emulator.calls).toEqual([]);
  });

  it('bounds the lists inside an input too (one user given 10,001 tags)', async () => {
    const res = await rig.query('mutation($input: [UserTagsInput!]!) { removeUserTags(input: $input) { id } }', {
      input: [{ id: 'alice', tags: Array.from({ length: 10_001 }, () => 'x') }],
    });
    expect(res.status).toBe(400);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'input' });
    expect(rig.emulator.calls).toEqual([]);
  });

  it('counts list arguments in the cost: 30 aliases of 1,000 ids each are refused, one of them is served', async () => {
    const ids = Array.from({ length: 1000 }, (_, i) => `cost-${i}`);
    const aliased = `query($ids: [ID!]!) { ${Array.from({ length: 30 }, (_, i) => `a${i}: users(ids: $ids) { id tags }`).join(' ')} }`;
    const res = await rig.query(aliased, { ids });
    expect(res.status).toBe(400);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit: 30_000 });
    expect(rig.emulator.calls).toEqual([]);
    const one = await rig.query<{ users: unknown[] }>(USERS, { ids });
    expect(one.errors).toBeUndefined();
    expect(one.data!.users).toHaveLength(1000);
  });

  it('refuses a document with a long list after serving it with one id (a fit is remembered only for scalars)', async () => {
    const aliased = `query($ids: [ID!]!) { ${Array.from({ length: 30 }, (_, i) => `b${i}: users(ids: $ids) { id }`).join(' ')} }`;
    for (let i = 0; i < 2; i++) {
      // One id where a list is expected: graphql-js makes it a list of one, and the cost is 30 * 2.
      const single = await rig.query<{ b0: unknown[] }>(aliased, { ids: 'bob' });
      expect(single.errors).toBeUndefined();
      expect(single.data!.b0).toHaveLength(1);
    }
    rig.emulator.resetCalls();
    const long = await rig.query(aliased, { ids: Array.from({ length: 1000 }, (_, i) => `long-${i}`) });
    expect(long.status).toBe(400);
    expect(long.errors![0]!.extensions).toMatchObject({ code: 'GRAPHQL_VALIDATION_FAILED', limit: 30_000 });
    expect(rig.emulator.calls).toEqual([]);
  });
});

describe('load shedding', () => {
  it('answers 503 OVERLOADED with Retry-After at once when too many requests are in flight, says so on /readyz, and recovers', async () => {
    const small = await startRig({
      env: { OVERLOAD_MAX_IN_FLIGHT: '2' },
      sharedEmulator: { emulator: rig.emulator, secretKey: rig.secretKey },
    });
    onTestFinished(() => small.close());
    rig.emulator.injectFault({ hangMs: 1500 }, { count: 2 });
    const slow = [small.query('{ user(id: "shed-1") { tags } }'), small.query('{ user(id: "shed-2") { tags } }')];
    await new Promise((r) => setTimeout(r, 300));

    const started = performance.now();
    const refused = await small.query('{ __typename }');
    expect(performance.now() - started).toBeLessThan(500);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.errors![0]!.extensions?.code).toBe('OVERLOADED');
    const ready = await fetch(`${small.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { problem: string }).problem).toMatch(/overloaded: 2 requests in flight/);
    expect((await fetch(`${small.url}/healthz`)).status).toBe(200);

    for (const res of await Promise.all(slow)) expect(res.status).toBe(200);
    const after = await small.query<{ __typename: string }>('{ __typename }');
    expect(after.data).toEqual({ __typename: 'Query' });
    expect((await fetch(`${small.url}/readyz`)).status).toBe(200);
  });

  it('keeps answering light requests while heavy ones are refused', async () => {
    const small = await startRig({
      env: { OVERLOAD_MAX_IN_FLIGHT: '4' },
      sharedEmulator: { emulator: rig.emulator, secretKey: rig.secretKey },
    });
    onTestFinished(() => small.close());
    rig.emulator.injectFault({ hangMs: 1500 }, { count: 2 });
    // Over 16 kB each: heavy, and two of them are all heavy requests may hold of 4.
    const heavy = (n: number) =>
      small.query(USERS, { ids: Array.from({ length: 2500 }, (_, i) => `heavy-${n}-${i % 2}`) });
    const slow = [heavy(1), heavy(2)];
    await new Promise((r) => setTimeout(r, 300));
    const third = await heavy(3);
    expect(third.status).toBe(503);
    expect(third.errors![0]!.extensions?.code).toBe('OVERLOADED');
    const light = await small.query<{ user: { tags: string[] } }>('{ user(id: "alice") { tags } }');
    expect(light.status).toBe(200);
    expect(light.data!.user.tags).toEqual(rig.emulator.store.getTags('alice'));
    await Promise.all(slow);
  });

  it('sheds requests that arrive while the event loop is stalled, and recovers within a few seconds', async () => {
    const small = await startRig({
      env: { OVERLOAD_EVENT_LOOP_LAG_MS: '200' },
      sharedEmulator: { emulator: rig.emulator, secretKey: rig.secretKey },
    });
    onTestFinished(() => small.close());
    const pending = small.query('{ __typename }');
    // What 48 heavy requests did to the process: it computes, and nothing else runs meanwhile.
    const until = performance.now() + 1200;
    while (performance.now() < until);
    const res = await pending;
    expect(res.status).toBe(503);
    expect(res.errors![0]!.extensions?.code).toBe('OVERLOADED');
    await expect
      .poll(async () => (await small.query('{ __typename }')).status, { timeout: 5000, interval: 200 })
      .toBe(200);
  });
});

describe('no read through a write', () => {
  const REMOVE_BOB = 'mutation { removeUserTags(input: [{ id: "bob", tags: ["no-such-tag"] }]) { id tags } }';

  it('refuses a write token reading another user through a mutation, FORBIDDEN with no upstream call', async () => {
    const auth = bearer(await token({ ...plain, sub: 'alice', scope: 'tags:write' }));
    for (const query of [
      REMOVE_BOB,
      'mutation { removeAllUserTags(ids: ["alice", "bob"]) { id ...T } } fragment T on User { tags }',
      'mutation($input: [UserTagsInput!]!) { addUserTags(input: $input) { ... on User { tags } } }',
    ]) {
      const res = await guarded.query(query, { input: [{ id: 'bob', tags: ['x'] }] }, auth);
      expect(res.status, query).toBe(403);
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'FORBIDDEN', requiredScope: 'tags:read' });
      expect(res.errors![0]!.message).toMatch(/"bob"/);
      expect(rig.emulator.calls, query).toEqual([]);
    }
  });

  it("lets a write token write others' tags when it asks only for ids, and read its own user's tags", async () => {
    const auth = bearer(await token({ ...plain, sub: 'alice', scope: 'tags:write' }));
    const idsOnly = await guarded.query(REMOVE_BOB.replace('{ id tags }', '{ id }'), undefined, auth);
    expect(idsOnly.errors).toBeUndefined();
    expect(idsOnly.data).toEqual({ removeUserTags: [{ id: 'bob' }] });
    const own = await guarded.query<{ removeUserTags: Array<{ tags: string[] }> }>(
      REMOVE_BOB.replace('"bob"', '"alice"'),
      undefined,
      auth,
    );
    expect(own.errors).toBeUndefined();
    expect(own.data!.removeUserTags[0]!.tags).toEqual(rig.emulator.store.getTags('alice'));
    const both = bearer(await token({ ...plain, sub: 'alice', scope: 'tags:write tags:read' }));
    const read = await guarded.query(REMOVE_BOB, undefined, both);
    expect(read.errors).toBeUndefined();
  });
});

describe('Host check', () => {
  it('refuses a foreign Host with a coded 400, and answers the loopback names with any port', async () => {
    const foreign = await withHost(rig.url, '/graphql?query=%7B__typename%7D', 'rebound.attacker.example');
    expect(foreign.status).toBe(400);
    expect(JSON.parse(foreign.body).errors[0].extensions.code).toBe('BAD_REQUEST');
    expect(foreign.body).toMatch(/ALLOWED_HOSTS/);
    for (const host of ['localhost:1', '127.0.0.1', '[::1]:4000', 'LOCALHOST']) {
      const ok = await withHost(rig.url, '/graphql?query=%7B__typename%7D', host);
      expect(ok.status, host).toBe(200);
    }
    // Probes by address still work.
    expect((await withHost(rig.url, '/healthz', '10.1.2.3:4000')).status).toBe(200);
    expect(rig.emulator.calls).toEqual([]);
  });

  it('answers the names ALLOWED_HOSTS lists', async () => {
    const listed = await startRig({
      env: { ALLOWED_HOSTS: 'api.example.com, gw.internal' },
      sharedEmulator: { emulator: rig.emulator, secretKey: rig.secretKey },
    });
    onTestFinished(() => listed.close());
    expect((await withHost(listed.url, '/graphql?query=%7B__typename%7D', 'api.example.com')).status).toBe(200);
    expect((await withHost(listed.url, '/graphql?query=%7B__typename%7D', 'gw.internal:8443')).status).toBe(200);
    expect((await withHost(listed.url, '/graphql?query=%7B__typename%7D', 'example.com')).status).toBe(400);
  });
});

describe('introspection limits', () => {
  it("serves GraphiQL's own introspection query", async () => {
    const res = await rig.query<{ __schema: { types: unknown[] } }>(
      getIntrospectionQuery({ inputValueDeprecation: true, schemaDescription: true }),
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.__schema.types.length).toBeGreaterThan(5);
  });

  it('refuses 30 aliased __schema trees and a 51-level ofType chain, with no work done', async () => {
    const tree = '{ types { name fields { name type { name } } } }';
    const flood = await rig.query(`{ ${Array.from({ length: 30 }, (_, i) => `s${i}: __schema ${tree}`).join(' ')} }`);
    expect(flood.status).toBe(400);
    expect(flood.errors![0]!.message).toMatch(/Introspection limit/);
    expect(flood.body.length).toBeLessThan(10_000);
    const chain = `{ __schema { types { ${'ofType { '.repeat(51)}name${' }'.repeat(51)} } } }`;
    const deep = await rig.query(chain);
    expect(deep.status).toBe(400);
    expect(deep.errors![0]!.message).toMatch(/Introspection depth limit/);
    const viaType = await rig.query(`{ __type(name: "User") { ${'ofType { '.repeat(51)}name${' }'.repeat(51)} } }`);
    expect(viaType.status).toBe(400);
  });
});

describe('documents that nest deeply', () => {
  it('answers a 2,400-level nested list literal with 400 GRAPHQL_PARSE_FAILED, not 500', async () => {
    const res = await rig.query(`{ users(ids: ${'['.repeat(2400)}"a"${']'.repeat(2400)}) { id } }`);
    expect(res.status).toBe(400);
    expect(res.errors![0]!.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
    expect(rig.emulator.calls).toEqual([]);
  });

  it('answers a 2,400-level nested list in the variables with a 4xx', async () => {
    const nested = JSON.parse(`${'['.repeat(2400)}"a"${']'.repeat(2400)}`) as unknown;
    const res = await rig.query(USERS, { ids: nested });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(res.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('slow clients', () => {
  it('cuts a client that sends its headers slowly within HTTP_HEADERS_TIMEOUT_MS', async () => {
    const slow = await startRig({
      env: { HTTP_HEADERS_TIMEOUT_MS: '1000', HTTP_BODY_TIMEOUT_MS: '2000' },
      sharedEmulator: { emulator: rig.emulator, secretKey: rig.secretKey },
    });
    onTestFinished(() => slow.close());
    const { port } = new URL(slow.url);
    const started = performance.now();
    const { answer, ms } = await new Promise<{ answer: string; ms: number }>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1');
      let answer = '';
      socket.on('data', (c: Buffer) => (answer += c.toString()));
      socket.on('error', () => {});
      socket.on('close', () => {
        clearInterval(drip);
        resolve({ answer, ms: performance.now() - started });
      });
      socket.write('POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      // One header byte every 200 ms: never done, never idle.
      const drip = setInterval(() => socket.write('x'), 200);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    expect(ms).toBeGreaterThan(900);
    expect(ms).toBeLessThan(2500);
  });
});

describe('echo little', () => {
  it('quotes at most the first 64 characters of a bad id or tag', async () => {
    const long = 'x'.repeat(200_000);
    const id = await rig.query('query($id: ID!) { user(id: $id) { tags } }', { id: long });
    expect(id.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    expect(id.body.length).toBeLessThan(1000);
    expect(id.body).not.toContain('x'.repeat(65));
    const tag = await rig.query('mutation($input: [UserTagsInput!]!) { addUserTags(input: $input) { id } }', {
      input: [{ id: 'alice', tags: [long] }],
    });
    expect(tag.errors![0]!.extensions?.code).toBe('BAD_USER_INPUT');
    expect(tag.body.length).toBeLessThan(1000);
    expect(rig.emulator.calls).toEqual([]);
  });
});

describe('a deadline that holds', () => {
  it('answers a read and a write by REQUEST_TIMEOUT_MS and a small margin while the upstream hangs', async () => {
    const short = await startRig({
      env: { REQUEST_TIMEOUT_MS: '1000', TIM_TIMEOUT_MS: '8000' },
      sharedEmulator: { emulator: rig.emulator, secretKey: rig.secretKey },
    });
    onTestFinished(() => short.close());
    for (const query of [
      '{ user(id: "deadline-read") { tags } }',
      'mutation { addUserTags(input: [{ id: "deadline-write", tags: ["t"] }]) { id tags } }',
    ]) {
      rig.emulator.injectFault({ hangMs: 6000 }, { count: 1 });
      const started = performance.now();
      const res = await short.query(query);
      const ms = performance.now() - started;
      expect(ms, query).toBeLessThan(1000 + 1500);
      expect(res.errors?.[0]?.extensions?.code, query).toMatch(/^(RATE_LIMITED|UPSTREAM_UNAVAILABLE|OVERLOADED)$/);
      rig.emulator.clearFaults();
    }
  });
});

describe('the deadline backstop', () => {
  it('answers 503 OVERLOADED at its limit for an operation still waiting on something, and drops the late answer', async () => {
    const yoga = createYoga({
      schema: createSchema({
        typeDefs: 'type Query { slow: String }',
        resolvers: { Query: { slow: () => new Promise((r) => setTimeout(() => r('late'), 1500)) } },
      }),
      plugins: [useDeadlineBackstop(300)],
      logging: false,
    });
    const server = createServer(yoga);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
    const { port } = server.address() as { port: number };
    const started = performance.now();
    const res = await postGraphQL(`http://127.0.0.1:${port}`, '{ slow }');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.errors![0]!.extensions?.code).toBe('OVERLOADED');
    // The late answer finds the response ended: nothing throws, and the server still serves.
    await new Promise((r) => setTimeout(r, 1400));
    expect((await postGraphQL(`http://127.0.0.1:${port}`, '{ __typename }')).status).toBe(200);
  });
});
