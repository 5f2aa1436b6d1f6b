/** Issue 12: pushMessage over im_push on the emulator: wire mapping, audiences, input rules, pacing, exactly once. */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AUDIENCE, bearer, ISSUER, JWT_SECRET, token } from '../security/tokens.js';
import { callsOf, startRig, type TestRig } from '../helpers/gateway.js';

/** What the demo data (data/demo-attributes.json, the emulator's default) says each user holds. */
const DEMO_ATTRS: Array<{ To_Account: string; Attrs: Record<string, string> }> = JSON.parse(
  readFileSync(new URL('../../data/demo-attributes.json', import.meta.url), 'utf8'),
).UserAttrs;
const demoHolding = (name: string, value: string) =>
  DEMO_ATTRS.filter((u) => u.Attrs[name] === value)
    .map((u) => u.To_Account)
    .sort();

const PUSH = 'mutation($input: PushMessageInput!) { pushMessage(input: $input) { taskId } }';
type PushData = { pushMessage: { taskId: string } };
const text = (t: string) => ({ elements: [{ text: t }] });

let rig: TestRig;
beforeAll(async () => {
  rig = await startRig({ env: { TIM_TIMEOUT_MS: '1000', REQUEST_TIMEOUT_MS: '8000' } });
});
afterAll(() => rig.close());
beforeEach(() => {
  rig.emulator.resetCalls();
  rig.emulator.clearFaults();
  rig.emulator.pushes.dailyQuota = 100;
});

const pushes = () => callsOf(rig.emulator, 'im_push');
const lastTask = () => rig.emulator.pushes.tasks.at(-1)!;
async function push(input: Record<string, unknown>) {
  return rig.query<PushData>(PUSH, { input });
}

describe('wire mapping and audiences', () => {
  it('maps every field of the input to the wire', async () => {
    const res = await push({
      audience: { tagsAll: ['vip'], tagsAny: ['lang:en', 'lang:zh'] },
      elements: [{ text: 'hi' }, { custom: { data: 'd', description: 'desc', extension: 'ext' } }],
      fromAccount: 'alice',
      offlineLifetimeSeconds: 3600,
      offlinePush: { title: 'T', description: 'D', extension: 'E' },
    });
    expect(res.errors).toBeUndefined();
    expect(res.data?.pushMessage.taskId).toBe(lastTask().taskId);
    const [call] = pushes();
    const body = call!.body as Record<string, unknown>;
    expect(body).toMatchObject({
      Condition: { TagsAnd: ['vip'], TagsOr: ['lang:en', 'lang:zh'] },
      MsgBody: [
        { MsgType: 'TIMTextElem', MsgContent: { Text: 'hi' } },
        { MsgType: 'TIMCustomElem', MsgContent: { Data: 'd', Desc: 'desc', Ext: 'ext' } },
      ],
      From_Account: 'alice',
      MsgLifeTime: 3600,
      OfflinePushInfo: { Title: 'T', Desc: 'D', Ext: 'E' },
    });
    expect(Number.isInteger(body.MsgRandom)).toBe(true);
  });

  it('a tag push reaches exactly the demo users with the tag', async () => {
    const res = await push({ audience: { tagsAll: ['vip'] }, ...text('hello vips') });
    expect(res.errors).toBeUndefined();
    const store = rig.emulator.store;
    const expected = store
      .accounts()
      .filter((a) => store.getTags(a).includes('vip'))
      .sort();
    expect(expected.length).toBeGreaterThan(0);
    expect(lastTask().recipients).toEqual(expected);
  });

  it('an attribute push maps to AttrsAnd / AttrsOr and reaches those users', async () => {
    const res = await push({ audience: { attributesAll: [{ name: 'city', value: 'singapore' }] }, ...text('sg') });
    expect(res.errors).toBeUndefined();
    expect((pushes()[0]!.body as { Condition: unknown }).Condition).toEqual({ AttrsAnd: { city: 'singapore' } });
    expect(demoHolding('city', 'singapore').length).toBeGreaterThan(1);
    expect(lastTask().recipients).toEqual(demoHolding('city', 'singapore'));
    const res2 = await push({
      audience: {
        attributesAny: [
          { name: 'plan', value: 'enterprise' },
          { name: 'city', value: 'tokyo' },
        ],
      },
      ...text('any'),
    });
    expect(res2.errors).toBeUndefined();
    const either = [...new Set([...demoHolding('plan', 'enterprise'), ...demoHolding('city', 'tokyo')])].sort();
    expect(lastTask().recipients).toEqual(either);
  });

  it('a push with no audience reaches every user', async () => {
    const res = await push(text('everyone'));
    expect(res.errors).toBeUndefined();
    expect((pushes()[0]!.body as { Condition?: unknown }).Condition).toBeUndefined();
    expect(lastTask().recipients.length).toBe(rig.emulator.store.accounts().length);
  });
});

describe('input rules: BAD_USER_INPUT naming the field, no im_push call', () => {
  const long = 'x'.repeat(51);
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['no element', { elements: [] }, 'input.elements'],
    ['empty text', { elements: [{ text: '' }] }, 'input.elements[0].text'],
    ['empty tag', { audience: { tagsAll: [''] }, ...text('x') }, 'input.audience.tagsAll'],
    ['long tag', { audience: { tagsAny: [long] }, ...text('x') }, 'input.audience.tagsAny'],
    [
      '11 tags',
      { audience: { tagsAll: ['a', 'b', 'c', 'd', 'e', 'f'], tagsAny: ['g', 'h', 'i', 'j', 'k'] }, ...text('x') },
      'input.audience',
    ],
    ['tag in both', { audience: { tagsAll: ['a'], tagsAny: ['a'] }, ...text('x') }, 'input.audience'],
    ['empty list', { audience: { tagsAll: [] }, ...text('x') }, 'input.audience.tagsAll'],
    [
      'tags and attributes',
      { audience: { tagsAll: ['a'], attributesAll: [{ name: 'city', value: 'singapore' }] }, ...text('x') },
      'input.audience',
    ],
    [
      'unnamed attribute',
      { audience: { attributesAll: [{ name: 'planet', value: 'mars' }] }, ...text('x') },
      'input.audience',
    ],
    [
      'long value',
      { audience: { attributesAny: [{ name: 'city', value: long }] }, ...text('x') },
      'input.audience.attributesAny',
    ],
    ['lifetime', { offlineLifetimeSeconds: 604801, ...text('x') }, 'input.offlineLifetimeSeconds'],
    ['negative lifetime', { offlineLifetimeSeconds: -1, ...text('x') }, 'input.offlineLifetimeSeconds'],
    ['body over 10,000 bytes', { elements: [{ text: 'y'.repeat(10_001) }] }, 'input.elements'],
    ['empty key', { idempotencyKey: '', ...text('x') }, 'input.idempotencyKey'],
    ['65-byte key', { idempotencyKey: 'k'.repeat(65), ...text('x') }, 'input.idempotencyKey'],
    ['bad sender', { fromAccount: 'é', ...text('x') }, 'input.fromAccount'],
  ];
  it.each(cases)('%s', async (_name, input, field) => {
    const res = await push(input);
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    expect(pushes()).toHaveLength(0);
  });

  it('an element with both text and custom is refused by @oneOf', async () => {
    const res = await push({ elements: [{ text: 'a', custom: { data: 'b' } }] });
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(pushes()).toHaveLength(0);
  });
});

describe('pacing, retries and exactly once', () => {
  it('two pushes sent at once both succeed and arrive at least 1 s apart', async () => {
    const [a, b] = await Promise.all([push(text('one')), push(text('two'))]);
    expect(a.errors).toBeUndefined();
    expect(b.errors).toBeUndefined();
    const [first, second] = pushes();
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(1000);
  });

  it.each([91000, 90024])(
    'a first attempt answered %i is retried with the same MsgRandom, delivered once',
    async (code) => {
      rig.emulator.injectFault({ command: 'im_push', errorCode: code });
      const tasksBefore = rig.emulator.pushes.tasks.length;
      const res = await push(text('retry me'));
      expect(res.errors).toBeUndefined();
      const calls = pushes();
      expect(calls.map((c) => c.errorCode)).toEqual([code, 0]);
      const randoms = calls.map((c) => (c.body as { MsgRandom: number }).MsgRandom);
      expect(randoms[0]).toBe(randoms[1]);
      expect(rig.emulator.pushes.tasks.length).toBe(tasksBefore + 1);
      // The retry is counted with every other upstream retry.
      const metrics = await (await fetch(`${rig.url}/metrics`)).text();
      const counted = metrics
        .split('\n')
        .filter((l) => l.startsWith('tim_tags_upstream_retries_total{'))
        .filter((l) => l.includes('command="im_push"') && l.includes(`code="${code}"`));
      expect(counted).toHaveLength(1);
      expect(Number(counted[0]!.split(' ').at(-1))).toBeGreaterThanOrEqual(1);
    },
  );

  it('a first attempt that times out is not retried and answers delivery UNKNOWN', async () => {
    rig.emulator.injectFault({ command: 'im_push', hangMs: 2000 });
    const res = await push(text('lost answer'));
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', delivery: 'UNKNOWN' });
    expect(res.errors?.[0]?.message).toMatch(/may have gone out.*same idempotencyKey/);
    expect(pushes()).toHaveLength(1);
  });

  it('the same idempotencyKey twice: one delivery, the same taskId, no second call', async () => {
    const key = `key-${Date.now()}`;
    const first = await push({ idempotencyKey: key, ...text('once') });
    expect(first.errors).toBeUndefined();
    const tasks = rig.emulator.pushes.tasks.length;
    const second = await push({ idempotencyKey: key, ...text('once') });
    expect(second.data?.pushMessage.taskId).toBe(first.data?.pushMessage.taskId);
    expect(pushes()).toHaveLength(1);
    expect(rig.emulator.pushes.tasks.length).toBe(tasks);
  });

  it('90047 (quota used up) is UPSTREAM_ERROR and not retried', async () => {
    rig.emulator.pushes.dailyQuota = 0;
    const res = await push(text('over quota'));
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'UPSTREAM_ERROR', timErrorCode: 90047 });
    expect(pushes()).toHaveLength(1);
  });
});

describe('auth', () => {
  let jwtRig: TestRig;
  beforeAll(async () => {
    jwtRig = await startRig({ env: { AUTH_MODE: 'jwt', JWT_SECRET, JWT_ISSUER: ISSUER, JWT_AUDIENCE: AUDIENCE } });
  });
  afterAll(() => jwtRig.close());

  it('without push:send the mutation is FORBIDDEN with no call; with it, it pushes', async () => {
    const refused = await jwtRig.query(
      PUSH,
      { input: text('x') },
      bearer(await token({ scope: 'tags:read tags:write' })),
    );
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', requiredScope: 'push:send' });
    expect(callsOf(jwtRig.emulator, 'im_push')).toHaveLength(0);
    const allowed = await jwtRig.query<PushData>(
      PUSH,
      { input: text('x') },
      bearer(await token({ scope: 'push:send' })),
    );
    expect(allowed.errors).toBeUndefined();
    expect(callsOf(jwtRig.emulator, 'im_push')).toHaveLength(1);
  });
});
