/**
 * Issue 4: upstream discipline, end to end over HTTP against the emulator: the
 * rate budget under load (with and without coalescing), retries, unreadable and
 * hanging answers, partial failure, the circuit, and no added latency when idle.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { maxCallsInWindow } from '../../src/emulator/index.js';
import { callsOf, startRig, type GraphQLResponse, type RigOptions, type TestRig } from '../helpers/gateway.js';

const USERS = 5000;
const SEED = Array.from({ length: USERS }, (_, i) => ({ To_Account: `u${i}`, Tags: [`t${i % 50}`, 'all'] }));
const tagsOf = (i: number) => [`t${i % 50}`, 'all'];
const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `u${from + i}`);

const USER = 'query($id: ID!) { user(id: $id) { id tags } }';
const USERS_QUERY = 'query($ids: [ID!]!) { users(ids: $ids) { id tags } }';
type UserData = { user: { id: string; tags: string[] | null } };
type UsersData = { users: Array<{ id: string; tags: string[] | null }> };

async function rigWith(opts: RigOptions = {}): Promise<TestRig> {
  return startRig({ ...opts, emulator: { seed: SEED, ...opts.emulator }, env: { LOG_LEVEL: 'info', ...opts.env } });
}

/** Resolves with `p`, or fails the test if it has not settled within `ms`: no request may hang. */
async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not answered within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Fires `n` single-user queries at once for random seeded users; checks each answer and counts the outcomes. */
async function singleUserStorm(
  rig: TestRig,
  n: number,
  boundMs: number,
): Promise<{ served: number; rateLimited: number }> {
  const picks = Array.from({ length: n }, () => Math.floor(Math.random() * USERS));
  const answers = await within(
    boundMs,
    Promise.all(picks.map((i) => rig.query<UserData>(USER, { id: `u${i}` }).then((res) => ({ i, res })))),
  );
  let served = 0;
  let rateLimited = 0;
  for (const { i, res } of answers) {
    expect(res.status).toBe(200);
    expect(res.data?.user.id).toBe(`u${i}`);
    if (res.data?.user.tags) {
      expect(res.data.user.tags).toEqual(tagsOf(i));
      served++;
    } else {
      expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['RATE_LIMITED']);
      expect(res.errors?.[0]?.path).toEqual(['user', 'tags']);
      rateLimited++;
    }
  }
  return { served, rateLimited };
}

function codesOf(res: GraphQLResponse): unknown[] {
  return (res.errors ?? []).map((e) => e.extensions?.code);
}

describe('the rate budget under load', () => {
  it('answers 400 concurrent single-user requests with at most 100 calls in any sliding second', async () => {
    const rig = await rigWith({ emulator: { latencyMs: 20 } });
    try {
      const { served } = await singleUserStorm(rig, 400, 20_000);
      expect(served).toBeGreaterThan(0);
      const calls = callsOf(rig.emulator);
      expect(maxCallsInWindow(calls)).toBeLessThanOrEqual(100);
      expect(calls.every((c) => c.errorCode === 0)).toBe(true); // never a 60007
      expect(calls.every((c) => c.accounts.length <= 100 && new Set(c.accounts).size === c.accounts.length)).toBe(true);
      expect(calls.length).toBeLessThan(400);
    } finally {
      await rig.close();
    }
  });

  it('keeps to 100 calls in any sliding second with coalescing off, by the budget alone', async () => {
    // Per-request batching only: 400 requests want 400 calls, four seconds of budget; each may wait three.
    const rig = await rigWith({
      emulator: { latencyMs: 20 },
      gateway: { coalesce: false },
      env: { TIM_MAX_QPS: '100', REQUEST_TIMEOUT_MS: '3000' },
    });
    try {
      const { served, rateLimited } = await singleUserStorm(rig, 400, 20_000);
      expect(served).toBeGreaterThan(100);
      expect(served + rateLimited).toBe(400);
      const calls = callsOf(rig.emulator);
      expect(calls).toHaveLength(served);
      expect(maxCallsInWindow(calls)).toBeLessThanOrEqual(100);
      expect(calls.every((c) => c.errorCode === 0)).toBe(true);
    } finally {
      await rig.close();
    }
  });
});

describe('a gateway at rest', () => {
  let rig: TestRig;
  beforeAll(async () => {
    rig = await rigWith();
  });
  afterAll(() => rig.close());
  beforeEach(() => {
    rig.emulator.resetCalls();
    rig.emulator.clearFaults();
    rig.emulator.latencyMs = 0;
  });

  it('adds no latency to a lone request', async () => {
    await rig.query(USER, { id: 'u1' }); // opens the connections
    const started = performance.now();
    const res = await rig.query<UserData>(USER, { id: 'u2' });
    expect(performance.now() - started).toBeLessThan(200);
    expect(res.data?.user.tags).toEqual(tagsOf(2));
  });
});

describe('coalescing', () => {
  it('serves 50 concurrent requests for distinct users in far fewer than 50 calls when the budget is tight', async () => {
    // At 10 calls a second the budget spaces calls 100 ms apart, and what arrives meanwhile leaves
    // together. (At 100 a second the spacing is 10 ms: how many calls 50 requests cost then
    // depends on how fast this machine hands them to the gateway.)
    const rig = await rigWith({ env: { TIM_MAX_QPS: '10' } });
    try {
      const answers = await within(10_000, Promise.all(ids(50, 100).map((id) => rig.query<UserData>(USER, { id }))));
      answers.forEach((res, k) => expect(res.data?.user.tags).toEqual(tagsOf(100 + k)));
      const calls = callsOf(rig.emulator);
      expect(calls.length).toBeLessThanOrEqual(15);
      expect(calls.flatMap((c) => c.accounts).sort()).toEqual(ids(50, 100).sort());
    } finally {
      await rig.close();
    }
  });
});

describe('retries', () => {
  let rig: TestRig;
  beforeAll(async () => {
    rig = await rigWith();
  });
  afterAll(() => rig.close());
  beforeEach(() => {
    rig.emulator.resetCalls();
    rig.emulator.clearFaults();
  });

  it.each([
    ['TIM 91000', { errorCode: 91000 }],
    ['HTTP 502', { httpStatus: 502 }],
    ['TIM 60007', { errorCode: 60007 }],
  ])('retries %s once and succeeds', async (_name, fault) => {
    rig.emulator.injectFault(fault, { count: 1 });
    const res = await rig.query<UserData>(USER, { id: 'u7' });
    expect(res.errors).toBeUndefined();
    expect(res.data?.user.tags).toEqual(tagsOf(7));
    const calls = callsOf(rig.emulator);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.errorCode).toBe(0);
  });

  it('signs a new UserSig after 70001 and tries once more', async () => {
    await rig.query(USER, { id: 'u1' }); // the gateway signs its UserSig for this call
    rig.emulator.resetCalls(); // no wait: a sig renewed within the same second must differ too
    rig.emulator.injectFault({ errorCode: 70001 }, { count: 1 });
    const res = await rig.query<UserData>(USER, { id: 'u8' });
    expect(res.errors).toBeUndefined();
    expect(res.data?.user.tags).toEqual(tagsOf(8));
    const [expired, retried] = callsOf(rig.emulator);
    expect(expired!.errorCode).toBe(70001);
    expect(retried!.errorCode).toBe(0);
    expect(retried!.query.usersig).not.toBe(expired!.query.usersig);
  });

  it.each([90001, 90009, 90018, 70009])('does not retry TIM %i', async (code) => {
    rig.emulator.injectFault({ errorCode: code }, { count: 1 });
    const res = await rig.query<UserData>(USER, { id: 'u9' });
    expect(res.data?.user).toEqual({ id: 'u9', tags: null });
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', timErrorCode: code });
    expect(res.errors?.[0]?.path).toEqual(['user', 'tags']);
    expect(callsOf(rig.emulator)).toHaveLength(1);
  });

  it('answers UPSTREAM_UNAVAILABLE to an unreadable answer, without retrying it', async () => {
    // CONTRACT.md retries HTTP 5xx, network errors and timeouts, and "nothing else": an answer
    // that came back whole but is not a TIM answer would come back the same way again.
    rig.emulator.injectFault({ garbage: true }, { count: 1 });
    const res = await rig.query<UserData>(USER, { id: 'u10' });
    expect(res.data?.user).toEqual({ id: 'u10', tags: null });
    expect(codesOf(res)).toEqual(['UPSTREAM_UNAVAILABLE']);
    expect(res.body).not.toMatch(/<html|usersig/i);
    expect(callsOf(rig.emulator)).toHaveLength(1);
  });
});

describe('a hanging upstream', () => {
  it('is retried after TIM_TIMEOUT_MS, then answered UPSTREAM_UNAVAILABLE within the request deadline', async () => {
    const rig = await rigWith({ env: { TIM_TIMEOUT_MS: '300', REQUEST_TIMEOUT_MS: '1500' } });
    try {
      rig.emulator.injectFault({ hangMs: 5000 }, { count: Infinity });
      const started = performance.now();
      const res = await within(5000, rig.query<UserData>(USER, { id: 'u11' }));
      const took = performance.now() - started;
      expect(res.data?.user).toEqual({ id: 'u11', tags: null });
      expect(codesOf(res)).toEqual(['UPSTREAM_UNAVAILABLE']);
      expect(took).toBeLessThan(1500 + 400);
      expect(callsOf(rig.emulator).length).toBeGreaterThanOrEqual(2);
    } finally {
      await rig.close();
    }
  });
});

describe('partial failure', () => {
  it('fails only the users of the one call in three that failed; the others resolve', async () => {
    const rig = await rigWith();
    try {
      rig.emulator.injectFault({ errorCode: 90009, command: 'im_get_tag' }, { skip: 1, count: 1 });
      const asked = ids(250, 1000);
      const res = await rig.query<UsersData>(USERS_QUERY, { ids: asked });
      const calls = callsOf(rig.emulator);
      expect(calls).toHaveLength(3);
      const failedCalls = calls.filter((c) => c.errorCode !== 0);
      expect(failedCalls).toHaveLength(1);
      const failed = new Set(failedCalls[0]!.accounts);
      expect([50, 100]).toContain(failed.size);

      const users = res.data!.users;
      expect(users.map((u) => u.id)).toEqual(asked);
      const nullAt = users.flatMap((u, i) => (u.tags === null ? [i] : []));
      expect(nullAt.map((i) => asked[i]).sort()).toEqual([...failed].sort());
      users.forEach((u, i) => {
        if (!failed.has(u.id)) expect(u.tags).toEqual(tagsOf(1000 + i));
      });
      expect(res.errors).toHaveLength(failed.size);
      expect(res.errors!.map((e) => e.path).sort()).toEqual(nullAt.map((i) => ['users', i, 'tags']).sort());
      expect(
        res.errors!.every((e) => e.extensions?.code === 'UPSTREAM_ERROR' && e.extensions.timErrorCode === 90009),
      ).toBe(true);
    } finally {
      await rig.close();
    }
  });
});

describe('the circuit', () => {
  it('opens after repeated failures (503 on /readyz, fails fast without a call) and recovers by itself', async () => {
    const rig = await rigWith({ gateway: { circuit: { threshold: 3, cooldownMs: 500 } } });
    const readyz = async () => (await fetch(`${rig.url}/readyz`)).status;
    try {
      expect(await readyz()).toBe(200);
      rig.emulator.injectFault({ httpStatus: 502 }, { count: Infinity });
      const failing = await rig.query<UserData>(USER, { id: 'u12' });
      expect(codesOf(failing)).toEqual(['UPSTREAM_UNAVAILABLE']);
      expect(callsOf(rig.emulator)).toHaveLength(3);
      expect(await readyz()).toBe(503);

      const started = performance.now();
      const fast = await rig.query<UserData>(USER, { id: 'u13' });
      expect(performance.now() - started).toBeLessThan(200);
      expect(codesOf(fast)).toEqual(['UPSTREAM_UNAVAILABLE']);
      expect(callsOf(rig.emulator)).toHaveLength(3); // no call was made

      rig.emulator.clearFaults();
      const recovered = Date.now() + 3000;
      while ((await readyz()) !== 200 && Date.now() < recovered) await new Promise((r) => setTimeout(r, 50));
      expect(await readyz()).toBe(200);
      const res = await rig.query<UserData>(USER, { id: 'u14' });
      expect(res.data?.user.tags).toEqual(tagsOf(14));
      expect(callsOf(rig.emulator)).toHaveLength(4);
    } finally {
      await rig.close();
    }
  });
});
