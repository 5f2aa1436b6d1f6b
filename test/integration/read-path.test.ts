/** Issue 2: the read path end to end, over HTTP, against the emulator. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { verifyUserSig } from '../../src/tim/usersig.js';
import { ADMIN, callsOf, SDKAPPID, startRig, type TestRig } from '../helpers/gateway.js';

let rig: TestRig;

beforeAll(async () => {
  rig = await startRig({
    emulator: {
      seed: Array.from({ length: 300 }, (_, i) => ({
        To_Account: `u${i}`,
        Tags: i % 7 === 0 ? [] : [`t${i % 5}`, 'all'],
      })),
    },
  });
});
afterAll(() => rig.close());
beforeEach(() => {
  rig.emulator.resetCalls();
  rig.emulator.clearFaults();
});

const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `u${from + i}`);

describe('batching', () => {
  it('sends 250 distinct ids as exactly three im_get_tag calls of 100, 100 and 50, each id once', async () => {
    const res = await rig.query<{ users: Array<{ id: string; tags: string[] }> }>(
      'query($ids: [ID!]!) { users(ids: $ids) { id tags } }',
      { ids: ids(250) },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.users).toHaveLength(250);
    expect(res.data!.users[1]).toEqual({ id: 'u1', tags: ['t1', 'all'] });
    const calls = callsOf(rig.emulator);
    expect(calls.map((c) => c.accounts.length).sort((a, b) => b - a)).toEqual([100, 100, 50]);
    const sent = calls.flatMap((c) => c.accounts);
    expect(new Set(sent).size).toBe(250);
    expect(sent.sort()).toEqual(ids(250).sort());
  });

  it('deduplicates ids across duplicates and aliases, keeping order and duplicates in the answer', async () => {
    const res = await rig.query<Record<string, unknown>>(
      `{ a: user(id: "u1") { tags } b: user(id: "u2") { id tags }
         c: users(ids: ["u2", "u1", "u2", "u3"]) { id tags } d: user(id: "u3") { tags } }`,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.c).toEqual([
      { id: 'u2', tags: ['t2', 'all'] },
      { id: 'u1', tags: ['t1', 'all'] },
      { id: 'u2', tags: ['t2', 'all'] },
      { id: 'u3', tags: ['t3', 'all'] },
    ]);
    const calls = callsOf(rig.emulator);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.accounts.sort()).toEqual(['u1', 'u2', 'u3']);
  });

  it('gives a user with no tags [] (and an unknown user too)', async () => {
    const res = await rig.query<{ users: Array<{ id: string; tags: string[] }> }>(
      '{ users(ids: ["u0", "u7", "nobody-here"]) { id tags } }',
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.users.map((u) => u.tags)).toEqual([[], [], []]);
  });

  it('signs every call with a valid admin UserSig and a fresh random', async () => {
    await rig.query('{ users(ids: ["u1", "u2"]) { tags } }');
    await rig.query('{ user(id: "u3") { tags } }');
    await rig.query('{ user(id: "u4") { tags } }');
    const calls = callsOf(rig.emulator);
    expect(calls.length).toBe(3);
    for (const call of calls) {
      expect(call.query.identifier).toBe(ADMIN);
      expect(call.query.sdkappid).toBe(String(SDKAPPID));
      expect(call.query.contenttype).toBe('json');
      const problem = verifyUserSig({
        userSig: call.query.usersig!,
        sdkappid: SDKAPPID,
        identifier: ADMIN,
        secretKey: rig.secretKey,
      });
      expect(problem).toBeNull();
      const random = Number(call.query.random);
      expect(Number.isInteger(random) && random >= 0 && random < 2 ** 32).toBe(true);
      expect(call.errorCode).toBe(0);
    }
    expect(new Set(calls.map((c) => c.query.random)).size).toBe(calls.length);
  });
});

describe('errors', () => {
  it('passes an upstream FAIL 90009 on as UPSTREAM_ERROR with timErrorCode', async () => {
    rig.emulator.injectFault({ errorCode: 90009, errorInfo: 'need admin' }, { count: 1 });
    const res = await rig.query<{ user: { id: string; tags: string[] | null } }>('{ user(id: "u1") { id tags } }');
    expect(res.data!.user).toEqual({ id: 'u1', tags: null });
    expect(res.errors).toHaveLength(1);
    expect(res.errors![0]!.path).toEqual(['user', 'tags']);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', timErrorCode: 90009 });
    expect(callsOf(rig.emulator)).toHaveLength(1); // 90009 is not retried
  });

  it('gives UPSTREAM_ERROR 90009 when the gateway is not the app admin', async () => {
    const other = await startRig({ env: { TIM_ADMIN_IDENTIFIER: 'not-the-admin' }, sharedEmulator: rig });
    try {
      const res = await other.query('{ user(id: "u1") { tags } }');
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', timErrorCode: 90009 });
    } finally {
      await other.close();
    }
  });

  it.each([
    ['an empty id', '""'],
    ['an id over 32 bytes', JSON.stringify('x'.repeat(33))],
    ['an id with a non-ASCII character', JSON.stringify('用户')],
  ])('refuses %s with BAD_USER_INPUT and no upstream call, even for the good ids beside it', async (_what, literal) => {
    const res = await rig.query(`{ ok: user(id: "u1") { tags } bad: user(id: ${literal}) { tags } }`);
    expect(res.errors!.every((e) => e.extensions?.code === 'BAD_USER_INPUT')).toBe(true);
    expect(res.errors!.some((e) => /^User id/.test(e.message) && e.path?.[0] === 'bad')).toBe(true);
    const listed = await rig.query(`{ users(ids: ["u2", ${literal}, "u3"]) { tags } }`);
    expect(listed.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', argument: 'ids' });
    expect(rig.emulator.calls).toHaveLength(0);
  });

  it('refuses more than MAX_IDS_PER_REQUEST distinct ids before any upstream call', async () => {
    const small = await startRig({ env: { MAX_IDS_PER_REQUEST: '5' }, sharedEmulator: rig });
    try {
      const res = await small.query('query($ids: [ID!]!) { users(ids: $ids) { tags } }', { ids: ids(6) });
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
      const aliased = await small.query(
        `{ ${ids(6)
          .map((id, i) => `a${i}: user(id: "${id}") { tags }`)
          .join(' ')} }`,
      );
      expect(aliased.errors!.every((e) => e.extensions?.code === 'BAD_USER_INPUT')).toBe(true);
      const fine = await small.query('query($ids: [ID!]!) { users(ids: $ids) { tags } }', { ids: [...ids(5), 'u0'] });
      expect(fine.errors).toBeUndefined();
      expect(callsOf(rig.emulator)).toHaveLength(1);
    } finally {
      await small.close();
    }
  });

  it.each([
    ['a null in a list of ids', { ids: [null] }],
    ['a missing required variable', {}],
  ])('refuses %s with BAD_USER_INPUT and no upstream call', async (_what, variables) => {
    const res = await rig.query('query($ids: [ID!]!) { users(ids: $ids) { tags } }', variables);
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(rig.emulator.calls).toHaveLength(0);
  });

  it('lets an ErrorList entry fail only its own user', async () => {
    const strict = await startRig({ emulator: { strictAccounts: true, seed: [{ To_Account: 'known', Tags: ['a'] }] } });
    try {
      const res = await strict.query<{ users: Array<{ id: string; tags: string[] | null }> }>(
        '{ users(ids: ["known", "ghost"]) { id tags } }',
      );
      expect(res.data!.users).toEqual([
        { id: 'known', tags: ['a'] },
        { id: 'ghost', tags: null },
      ]);
      expect(res.errors).toHaveLength(1);
      expect(res.errors![0]!.path).toEqual(['users', 1, 'tags']);
      expect(res.errors![0]!.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', timErrorCode: 70107 });
    } finally {
      await strict.close();
    }
  });

  it('reads Tags: [] and a left-out account alike', async () => {
    const empty = await startRig({ emulator: { emptyTags: 'empty', seed: [{ To_Account: 'a', Tags: [] }] } });
    try {
      const res = await empty.query<{ user: { tags: string[] } }>('{ user(id: "a") { tags } }');
      expect(res.data!.user.tags).toEqual([]);
    } finally {
      await empty.close();
    }
  });

  it('never shows a stack, the usersig or the secret key in a response', async () => {
    rig.emulator.injectFault({ garbage: true }, { count: 10 });
    const res = await rig.query('{ user(id: "u1") { tags } }');
    expect(res.errors![0]!.extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(res.body).not.toMatch(/usersig|stack|at \w+ \(/i);
    expect(res.body).not.toContain(rig.secretKey);
  });
});

describe('HTTP', () => {
  it("answers with an x-request-id, echoing the caller's", async () => {
    const mine = await rig.query('{ user(id: "u1") { id } }', undefined, { 'x-request-id': 'abc-123' });
    expect(mine.headers.get('x-request-id')).toBe('abc-123');
    const fresh = await rig.query('{ user(id: "u1") { id } }');
    expect(fresh.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('serves /healthz and /readyz', async () => {
    expect((await fetch(`${rig.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${rig.url}/readyz`);
    expect(ready.status).toBe(200);
  });
});

describe('health endpoints, one after another', () => {
  it('answers each in full, whatever was asked before', async () => {
    for (const path of ['/healthz', '/readyz', '/healthz', '/readyz']) {
      const res = await fetch(`${rig.url}${path}`);
      expect(res.status).toBe(200);
      const body = JSON.parse(await res.text());
      expect(body.status).toMatch(/ok|ready/);
    }
  });
});

describe('a gateway that cannot listen', () => {
  it('fails to start and leaves nothing listening behind (its embedded emulator is closed again)', async () => {
    const { loadConfig } = await import('../../src/config.js');
    const { startGateway } = await import('../../src/server.js');
    const { createLogger } = await import('../../src/logger.js');
    const listening = () =>
      (process as unknown as { _getActiveHandles(): Array<{ listening?: boolean }> })
        ._getActiveHandles()
        .filter((h) => h.listening === true).length;
    const before = listening();
    const port = new URL(rig.url).port; // taken by the rig's gateway
    const logger = createLogger('silent', { pretty: false });
    await expect(startGateway(loadConfig({ PORT: port }), { logger })).rejects.toThrow(/EADDRINUSE/);
    expect(listening()).toBe(before);
  });
});
