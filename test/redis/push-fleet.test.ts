/**
 * Issue 12: two real gateway processes share push pacing and idempotency
 * records through the real Redis on 127.0.0.1:6379, in front of one emulator.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TimEmulator } from '../../src/emulator/index.js';
import { PUSH_SPACING_MS } from '../../src/tim/push.js';
import { ADMIN, callsOf, postGraphQL } from '../helpers/gateway.js';
import { dropRedisKeys, spawnFleet, uniqueSdkappid, type GatewayProcess } from '../helpers/process.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const PUSHES = 10;

const sdkappid = uniqueSdkappid();
const secretKey = randomBytes(24).toString('hex');
let emulator: TimEmulator;
let gateways: GatewayProcess[] = [];

beforeAll(async () => {
  emulator = await TimEmulator.start({ sdkappid, secretKey, adminIdentifier: ADMIN, latencyMs: 30 });
  const env = {
    TIM_SDKAPPID: String(sdkappid),
    TIM_SECRET_KEY: secretKey,
    TIM_BASE_URL: emulator.url,
    AUTH_MODE: 'none',
    REDIS_URL,
    GATEWAY_REPLICAS: '2',
    // Ten pushes one second apart: the last leaves about ten seconds after the first.
    REQUEST_TIMEOUT_MS: '30000',
  };
  gateways = await spawnFleet(env, 2);
}, 90_000);

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await emulator?.close();
  await dropRedisKeys(REDIS_URL, `tim-tags:{${sdkappid}}:*`);
});

beforeEach(() => emulator.resetCalls());

const PUSH = 'mutation($input: PushMessageInput!) { pushMessage(input: $input) { taskId } }';
type PushData = { pushMessage: { taskId: string } };

describe('two gateway processes, one Redis', () => {
  it(`${PUSHES} pushes through both at once all succeed, arriving at least 1 s apart`, async () => {
    const answers = await Promise.all(
      Array.from({ length: PUSHES }, (_, i) =>
        postGraphQL<PushData>(gateways[i % 2]!.url, PUSH, {
          input: { audience: { tagsAny: ['vip'] }, elements: [{ text: `fleet push ${i}` }] },
        }),
      ),
    );
    for (const res of answers) expect(res.errors).toBeUndefined();
    const taskIds = answers.map((res) => res.data?.pushMessage.taskId);
    expect(new Set(taskIds).size).toBe(PUSHES);

    const calls = callsOf(emulator, 'im_push');
    // Every push was taken at its first attempt: no 90024, so no retry.
    expect(calls).toHaveLength(PUSHES);
    expect(emulator.pushes.tasks.map((t) => t.taskId).sort()).toEqual([...taskIds].sort());
    const arrivals = calls.map((c) => c.at).sort((a, b) => a - b);
    const gaps = arrivals.slice(1).map((at, i) => at - arrivals[i]!);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(PUSH_SPACING_MS);
  }, 60_000);

  it('the same idempotencyKey through gateway A then B: one delivery, the same taskId', async () => {
    const input = { elements: [{ text: 'once' }], idempotencyKey: `fleet-${randomBytes(6).toString('hex')}` };
    const first = await postGraphQL<PushData>(gateways[0]!.url, PUSH, { input });
    expect(first.errors).toBeUndefined();
    const second = await postGraphQL<PushData>(gateways[1]!.url, PUSH, { input });
    expect(second.errors).toBeUndefined();
    expect(second.data?.pushMessage.taskId).toBe(first.data?.pushMessage.taskId);
    // B answered from the record in Redis: one im_push in all, one task at the emulator.
    expect(callsOf(emulator, 'im_push')).toHaveLength(1);
    expect(emulator.pushes.tasks.filter((t) => t.taskId === first.data?.pushMessage.taskId)).toHaveLength(1);
  }, 30_000);
});
