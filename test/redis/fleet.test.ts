/**
 * Issue 5: three real gateway processes share one rate budget and one tag
 * cache through the real Redis on 127.0.0.1:6379, in front of one emulator.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { maxCallsInWindow, TimEmulator } from '../../src/emulator/index.js';
import { ADMIN, callsOf, postGraphQL, type GraphQLResponse } from '../helpers/gateway.js';
import { dropRedisKeys, spawnFleet, uniqueSdkappid, type GatewayProcess } from '../helpers/process.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
/** Low enough that a short burst makes the budget the bottleneck. */
const MAX_QPS = 20;
const USERS = 2000;
const tagsOf = (i: number) => [`t${i % 9}`, `g${i % 4}`];

const sdkappid = uniqueSdkappid();
const secretKey = randomBytes(24).toString('hex');
let emulator: TimEmulator;
let gateways: GatewayProcess[] = [];

beforeAll(async () => {
  emulator = await TimEmulator.start({
    sdkappid,
    secretKey,
    adminIdentifier: ADMIN,
    seed: Array.from({ length: USERS }, (_, i) => ({ To_Account: `p${i}`, Tags: tagsOf(i) })),
    // Calls take a while, as over the internet, so a process has several in flight at once.
    latencyMs: 40,
  });
  const env = {
    TIM_SDKAPPID: String(sdkappid),
    TIM_SECRET_KEY: secretKey,
    TIM_BASE_URL: emulator.url,
    AUTH_MODE: 'none',
    REDIS_URL,
    TIM_MAX_QPS: String(MAX_QPS),
    GATEWAY_REPLICAS: '3',
    TAGS_CACHE_TTL_MS: '600000',
    REQUEST_TIMEOUT_MS: '4000',
  };
  gateways = await spawnFleet(env, 3);
}, 90_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await emulator?.close();
  await dropRedisKeys(REDIS_URL, `tim-tags:{${sdkappid}}:*`);
});

beforeEach(() => emulator.resetCalls());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const USER_QUERY = 'query($id: ID!) { user(id: $id) { id tags } }';
type UserData = { user: { id: string; tags: string[] | null } };

describe('three gateway processes, one Redis', () => {
  it('say on /readyz that budget and cache are shared', async () => {
    for (const g of gateways) {
      const res = await fetch(`${g.url}/readyz`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { budget: string; cache: string };
      expect(body.budget).toMatch(/^redis \(20 calls per second/);
      expect(body.cache).toMatch(/^redis /);
    }
  });

  it(`make at most ${MAX_QPS} upstream calls in any sliding second together, and answer every request`, async () => {
    // 600 single-user requests in 40 waves, 50 ms apart, spread over the three processes: each
    // process alone would want about 20 calls a second, three times what the fleet may make.
    const pending: Array<Promise<{ i: number; res: GraphQLResponse<UserData> }>> = [];
    for (let wave = 0; wave < 40; wave++) {
      for (let k = 0; k < 15; k++) {
        const i = Math.floor(Math.random() * USERS);
        const gateway = gateways[(wave * 15 + k) % 3]!;
        pending.push(postGraphQL<UserData>(gateway.url, USER_QUERY, { id: `p${i}` }).then((res) => ({ i, res })));
      }
      await sleep(50);
    }
    const answers = await Promise.all(pending);

    let served = 0;
    for (const { i, res } of answers) {
      expect(res.status).toBe(200);
      const tags = res.data?.user.tags;
      if (tags) {
        expect(tags).toEqual(tagsOf(i));
        served++;
      } else {
        expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['RATE_LIMITED']);
      }
    }
    expect(served).toBeGreaterThan(0);

    // Every process drew on Redis throughout: none fell back to its local share.
    for (const g of gateways) expect(g.output()).not.toContain('Redis unreachable');
    const calls = callsOf(emulator);
    expect(maxCallsInWindow(calls, 1000, 'im_get_tag')).toBeLessThanOrEqual(MAX_QPS);
    // More calls than one second's worth: the limit was reached and held, not merely never approached.
    expect(calls.length).toBeGreaterThan(MAX_QPS);
    expect(calls.every((c) => c.errorCode === 0)).toBe(true);
  });

  it('after a mutation through A returns, a read through B answers the new tags, though B had cached the old', async () => {
    const [a, b] = gateways as [GatewayProcess, GatewayProcess];
    emulator.store.setTags('writer-1', ['old']);
    const before = await postGraphQL<UserData>(b.url, USER_QUERY, { id: 'writer-1' });
    expect(before.data?.user.tags).toEqual(['old']);
    // Cached now: a second read through B costs no call.
    await postGraphQL<UserData>(b.url, USER_QUERY, { id: 'writer-1' });
    expect(callsOf(emulator)).toHaveLength(1);

    const write = await postGraphQL<{ addUserTags: Array<{ tags: string[] }> }>(
      a.url,
      'mutation($id: ID!) { addUserTags(input: [{ id: $id, tags: ["new"] }]) { id tags } }',
      { id: 'writer-1' },
    );
    expect(write.errors).toBeUndefined();
    expect(write.data?.addUserTags[0]!.tags.sort()).toEqual(['new', 'old']);

    const after = await postGraphQL<UserData>(b.url, USER_QUERY, { id: 'writer-1' });
    expect(after.data?.user.tags?.sort()).toEqual(['new', 'old']);
  });

  it('a user read through one process is a cache hit in the others: one upstream call for three reads', async () => {
    emulator.store.setTags('hot-1', ['x', 'y']);
    for (const g of gateways) {
      const res = await postGraphQL<UserData>(g.url, USER_QUERY, { id: 'hot-1' });
      expect(res.data?.user.tags).toEqual(['x', 'y']);
    }
    const calls = callsOf(emulator);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.accounts).toEqual(['hot-1']);
  });
});
