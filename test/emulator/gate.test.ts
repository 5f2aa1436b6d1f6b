import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TimEmulator } from '../../src/emulator/index.js';
import { signUserSig } from '../../src/tim/usersig.js';
import { APP, callTim, codeOf, sign, startEmulator } from './harness.js';

let emulator: TimEmulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(() => emulator.close());

const get = { To_Account: ['alice'] };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a good call', () => {
  it('returns the seeded tags with the common answer fields', async () => {
    const { status, json } = await callTim(emulator, 'im_get_tag', { To_Account: ['alice', 'bob', 'frank'] });
    expect(status).toBe(200);
    expect(json).toMatchObject({ ActionStatus: 'OK', ErrorCode: 0, ErrorInfo: '' });
    expect(json?.RequestId).toEqual(expect.any(String));
    expect(json?.UserTags).toEqual([
      { To_Account: 'alice', Tags: ['vip', 'lang:en', 'city:singapore', 'platform:ios', 'plan:pro'] },
      { To_Account: 'bob', Tags: ['lang:zh', 'city:shenzhen', 'platform:android'] },
    ]);
  });
});

describe('signature and query checks', () => {
  const now = Math.floor(Date.now() / 1000);
  const cases: Array<[string, number, Record<string, string | undefined>]> = [
    ['sdkappid missing', 60012, { sdkappid: undefined }],
    ['sdkappid not the app', 60006, { sdkappid: '1400000002' }],
    ['usersig empty', 70002, { usersig: '' }],
    ['usersig missing', 70002, { usersig: undefined }],
    ['usersig garbage', 70003, { usersig: 'bm90IGEgc2ln' }],
    ['signed with another key', 70009, { usersig: sign({}, 'another-key') }],
    ['expired', 70001, { usersig: sign({ time: now - 7200, expire: 3600 }) }],
    ['identifier differs from the sig', 70013, { identifier: 'someone-else' }],
    ['sig for another sdkappid', 70014, { usersig: sign({ sdkappid: 1400000002 }) }],
    ['random missing', 70402, { random: undefined }],
    ['random not a uint32', 70402, { random: '4294967296' }],
    ['contenttype not json', 70402, { contenttype: 'xml' }],
  ];
  it.each(cases)('%s -> %i', async (_name, code, query) => {
    expect(await codeOf(emulator, 'im_get_tag', get, { query })).toBe(code);
  });

  it('answers 90009 to a non-admin identifier with its own valid sig', async () => {
    const usersig = sign({ identifier: 'alice' });
    expect(await codeOf(emulator, 'im_get_tag', get, { query: { identifier: 'alice', usersig } })).toBe(90009);
  });

  it('checks in the service order: sdkappid before the sig, the sig before the body', async () => {
    expect(await codeOf(emulator, 'im_get_tag', get, { query: { sdkappid: '1', usersig: '' } })).toBe(60006);
    expect(await codeOf(emulator, 'im_get_tag', undefined, { rawBody: 'nope', query: { usersig: '' } })).toBe(70002);
  });

  it('still checks the expiry of a sig it has verified before', async () => {
    // Start early in a second, then sign a sig whose last valid second is the next one: the first call has
    // more than a second to arrive even on a loaded machine, the second arrives just after it expired.
    if (Date.now() % 1000 > 700) await sleep(1000 - (Date.now() % 1000));
    const second = Math.floor(Date.now() / 1000);
    const usersig = signUserSig(
      { sdkappid: APP.sdkappid, identifier: APP.adminIdentifier, time: second - 10, expire: 11 },
      APP.secretKey,
    );
    expect(await codeOf(emulator, 'im_get_tag', get, { query: { usersig } })).toBe(0);
    await sleep((second + 2) * 1000 + 20 - Date.now());
    expect(await codeOf(emulator, 'im_get_tag', get, { query: { usersig } })).toBe(70001);
  });

  it('does not let a cached sig vouch for another identifier', async () => {
    const usersig = sign();
    expect(await codeOf(emulator, 'im_get_tag', get, { query: { usersig } })).toBe(0);
    expect(await codeOf(emulator, 'im_get_tag', get, { query: { usersig, identifier: 'alice' } })).toBe(70013);
  });
});

describe('routing and bodies', () => {
  it('answers 60009 to another command or service, with HTTP 200', async () => {
    expect(await codeOf(emulator, 'im_get_everything', get)).toBe(60009);
    expect(await codeOf(emulator, 'im_get_tag', get, { service: 'timpush' })).toBe(60009);
  });

  it('answers 90001 to a body that is not JSON, or empty', async () => {
    expect(await codeOf(emulator, 'im_get_tag', undefined, { rawBody: '{"To_Account": [' })).toBe(90001);
    expect(await codeOf(emulator, 'im_add_tag', undefined, { rawBody: '' })).toBe(90001);
    expect(emulator.calls.at(-1)?.body).toBeUndefined();
  });
});
