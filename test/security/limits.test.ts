/** Issue 6: bounded queries and bodies, refused before any upstream call; introspection when allowed. */
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { MAX_BODY_BYTES, QUERY_LIMITS } from '../../src/plugins/limits.js';
import { startRig, type TestRig } from '../helpers/gateway.js';

let rig: TestRig;

beforeAll(async () => {
  rig = await startRig();
});
afterAll(() => rig.close());
beforeEach(() => rig.emulator.resetCalls());

const aliases = (n: number) =>
  `{ ${Array.from({ length: n }, (_, i) => `a${i}: user(id: "u${i}") { tags }`).join(' ')} }`;
/** 1,000 distinct ids of 32 bytes: the most one request may ask for. */
const maxIds = Array.from({ length: 1000 }, (_, i) => `user-${String(i).padStart(4, '0')}-`.padEnd(32, 'x'));

async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const out = await work();
  return [out, performance.now() - started];
}

describe('query limits', () => {
  it('refuses a query 50 levels deep at validation, cheaply, with no upstream call', async () => {
    const deep = `{ user(id: "alice") ${'{ tags '.repeat(50)}${'}'.repeat(50)} }`;
    const [res, ms] = await timed(() => rig.query(deep));
    expect(res.status).toBe(400);
    expect(res.errors!.map((e) => e.message).join('\n')).toMatch(/depth limit of 8 exceeded/);
    expect(res.data ?? null).toBeNull();
    expect(rig.emulator.calls).toEqual([]);
    expect(ms).toBeLessThan(2000);
  });

  it('refuses 1,000 aliases cheaply (the token limit stops it while parsing) and 100 by the alias limit', async () => {
    const [res, ms] = await timed(() => rig.query(aliases(1000)));
    expect(res.status).toBe(400);
    expect(res.errors![0]!.message).toMatch(/Token limit of \d+ exceeded/);
    expect(ms).toBeLessThan(2000);
    const hundred = await rig.query(aliases(100));
    expect(hundred.status).toBe(400);
    expect(hundred.errors![0]!.message).toMatch(/Aliases limit of 30 exceeded, found 100/);
    expect(rig.emulator.calls).toEqual([]);
  });

  it(`allows ${QUERY_LIMITS.maxAliases} aliases`, async () => {
    const res = await rig.query<Record<string, { tags: string[] }>>(aliases(QUERY_LIMITS.maxAliases));
    expect(res.errors).toBeUndefined();
    expect(Object.keys(res.data!)).toHaveLength(QUERY_LIMITS.maxAliases);
  });

  it('still serves 1,000 ids of 32 bytes, in variables and written out in the document', async () => {
    const viaVariables = await rig.query<{ users: unknown[] }>('query($ids: [ID!]!) { users(ids: $ids) { id tags } }', {
      ids: maxIds,
    });
    expect(viaVariables.errors).toBeUndefined();
    expect(viaVariables.data!.users).toHaveLength(1000);
    const literal = await rig.query<{ users: unknown[] }>(`{ users(ids: ${JSON.stringify(maxIds)}) { id tags } }`);
    expect(literal.errors).toBeUndefined();
    expect(literal.data!.users).toHaveLength(1000);
  });

  it('refuses too many directives and a field repeated past the token limit', async () => {
    const directives = await rig.query(`{ __typename ${'@include(if: true) '.repeat(60)} }`);
    expect(directives.status).toBe(400);
    expect(directives.errors![0]!.message).toMatch(/Directives limit/);
    const [repeated, ms] = await timed(() => rig.query(`{ ${'user(id: "a") { tags } '.repeat(2000)} }`));
    expect(repeated.status).toBe(400);
    expect(ms).toBeLessThan(2000);
    expect(rig.emulator.calls).toEqual([]);
  });

  it('refuses batched HTTP operations', async () => {
    const res = await fetch(`${rig.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ query: '{ user(id: "alice") { tags } }' }, { query: '{ user(id: "bob") { tags } }' }]),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/"errors"/);
    expect(rig.emulator.calls).toEqual([]);
  });
});

describe('request body size', () => {
  const tenMegabytes = JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(10 * 1024 * 1024) } });

  it('refuses a 10 MB body with 413', async () => {
    const res = await fetch(`${rig.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: tenMegabytes,
    });
    expect(res.status).toBe(413);
    expect(await res.text()).toMatch(/too large/);
  });

  it(`serves a body just under MAX_BODY_BYTES (${MAX_BODY_BYTES}) and refuses one just over`, async () => {
    const sized = (bytes: number) => {
      const base = JSON.stringify({ query: '{ __typename }', variables: { pad: '' } });
      return JSON.stringify({ query: '{ __typename }', variables: { pad: 'x'.repeat(bytes - base.length) } });
    };
    const post = (body: string) =>
      fetch(`${rig.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const under = await post(sized(MAX_BODY_BYTES));
    expect(under.status).toBe(200);
    expect(await under.json()).toEqual({ data: { __typename: 'Query' } });
    const over = await post(sized(MAX_BODY_BYTES + 1));
    expect(over.status).toBe(413);
    await over.text();
  });

  it('serves a write of a few tags to 1,000 users of 32-byte ids', async () => {
    const input = maxIds.map((id) => ({ id, tags: ['campaign-2024-spring', 'segment:returning'] }));
    const body = JSON.stringify({
      query: 'mutation($input: [UserTagsInput!]!) { addUserTags(input: $input) { id } }',
      variables: { input },
    });
    expect(body.length).toBeLessThan(MAX_BODY_BYTES);
    const res = await rig.query<{ addUserTags: unknown[] }>(
      'mutation($input: [UserTagsInput!]!) { addUserTags(input: $input) { id } }',
      { input },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.addUserTags).toHaveLength(1000);
  });

  it('refuses a 10 MB body sent chunked, with no Content-Length, with 413', async () => {
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(
        `${rig.url}/graphql`,
        { method: 'POST', headers: { 'content-type': 'application/json' } },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        },
      );
      req.on('error', reject);
      // Written in pieces, so the gateway meets the limit mid-stream.
      const chunk = 'x'.repeat(64 * 1024);
      req.write('{"query":"{ __typename }","variables":{"pad":"');
      const writeMore = (left: number): void => {
        if (left === 0) return void req.end('"}}');
        if (req.destroyed) return;
        req.write(chunk, () => writeMore(left - 1));
      };
      writeMore(160);
    }).catch((err: Error) => ({ status: -1, body: err.message }));
    expect(status).toBe(413);
    expect(body).toMatch(/too large/);
  });
});

describe('introspection', () => {
  it('is on with GRAPHQL_INTROSPECTION=true (the default with the emulator), with field suggestions', async () => {
    const open = await startRig({
      env: { GRAPHQL_INTROSPECTION: 'true' },
      sharedEmulator: { emulator: rig.emulator, secretKey: rig.secretKey },
    });
    onTestFinished(() => open.close());
    const res = await open.query<{ __schema: { types: unknown[] } }>('{ __schema { types { name } } }');
    expect(res.errors).toBeUndefined();
    expect(res.data!.__schema.types.length).toBeGreaterThan(5);
    const typo = await open.query('{ usr(id: "a") { tags } }');
    expect(typo.errors![0]!.message).toMatch(/Did you mean "user"/);
  });

  it('is refused with GRAPHQL_INTROSPECTION=false, and errors stop suggesting field names', async () => {
    const closed = await startRig({
      env: { GRAPHQL_INTROSPECTION: 'false' },
      sharedEmulator: { emulator: rig.emulator, secretKey: rig.secretKey },
    });
    try {
      for (const q of ['{ __schema { types { name } } }', '{ __type(name: "User") { fields { name } } }']) {
        const res = await closed.query(q);
        expect(res.status).toBe(400);
        expect(res.errors![0]!.message).toMatch(/introspection/i);
        expect(res.data ?? null).toBeNull();
      }
      const typo = await closed.query('{ usr(id: "a") { tags } }');
      expect(typo.errors![0]!.message).not.toMatch(/user/);
      const plain = await closed.query<{ user: { tags: string[] }; __typename: string }>(
        '{ __typename user(id: "alice") { tags } }',
      );
      expect(plain.errors).toBeUndefined();
      expect(plain.data!.__typename).toBe('Query');
    } finally {
      await closed.close();
    }
  });
});
