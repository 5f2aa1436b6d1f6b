import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedCall, TimEmulator } from '../../src/emulator/index.js';
import { APP, callTim, codeOf, startEmulator } from './harness.js';

let emulator: TimEmulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(() => emulator.close());

async function control(method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${emulator.url}/__emulator/${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

describe('recorded calls', () => {
  it('records command, query, body, accounts, code and status in arrival order', async () => {
    emulator.resetCalls();
    const before = Date.now();
    await codeOf(emulator, 'im_get_tag', { To_Account: ['alice', 'bob'] });
    await codeOf(emulator, 'im_add_tag', {
      UserTags: [
        { To_Account: 'carol', Tags: ['a'] },
        { To_Account: 'dave', Tags: ['b'] },
      ],
    });
    await codeOf(emulator, 'im_get_tag', undefined, { rawBody: 'not json' });
    const [first, second, third] = emulator.calls;
    expect(emulator.calls).toHaveLength(3);
    expect(first).toMatchObject({ command: 'im_get_tag', accounts: ['alice', 'bob'], errorCode: 0, httpStatus: 200 });
    expect(first!.query).toMatchObject({
      sdkappid: String(APP.sdkappid),
      identifier: APP.adminIdentifier,
      contenttype: 'json',
    });
    expect(first!.body).toEqual({ To_Account: ['alice', 'bob'] });
    expect(first!.at).toBeGreaterThanOrEqual(before - 1);
    expect(first!.at).toBeLessThanOrEqual(Date.now() + 1);
    expect(second).toMatchObject({ command: 'im_add_tag', accounts: ['carol', 'dave'] });
    expect(second!.at).toBeGreaterThan(first!.at);
    expect(third).toMatchObject({ body: undefined, errorCode: 90001 });
  });
});

describe('the control surface', () => {
  it('serves calls, from an index on, and does not record itself', async () => {
    await control('POST', 'reset');
    await codeOf(emulator, 'im_get_tag', { To_Account: ['alice'] });
    await codeOf(emulator, 'im_remove_all_tags', { To_Account: ['nobody'] });
    const all = (await control('GET', 'calls')).json as RecordedCall[];
    expect(all.map((c) => c.command)).toEqual(['im_get_tag', 'im_remove_all_tags']);
    const since = (await control('GET', 'calls?since=1')).json as RecordedCall[];
    expect(since.map((c) => c.command)).toEqual(['im_remove_all_tags']);
    expect(emulator.calls).toHaveLength(2);
    expect((await control('GET', 'calls?since=-1')).status).toBe(400);
  });

  it('resets calls and faults', async () => {
    emulator.injectFault({ errorCode: 1 });
    await control('POST', 'reset');
    expect(emulator.calls).toHaveLength(0);
    expect(await codeOf(emulator, 'im_get_tag', { To_Account: ['alice'] })).toBe(0);
  });

  it('injects faults, with count, skip and command', async () => {
    expect(
      (await control('POST', 'faults', { fault: { errorCode: 70500, command: 'im_get_tag' }, skip: 1, count: 1 }))
        .status,
    ).toBe(200);
    const get = { To_Account: ['alice'] };
    const codes = [
      await codeOf(emulator, 'im_get_tag', get),
      await codeOf(emulator, 'im_get_tag', get),
      await codeOf(emulator, 'im_get_tag', get),
    ];
    expect(codes).toEqual([0, 70500, 0]);
    const bad = await control('POST', 'faults', { fault: { httpStatus: 'x' } });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: expect.stringMatching(/httpStatus/) });
    await control('POST', 'faults', { fault: { garbage: true } });
    await control('DELETE', 'faults');
    expect(await codeOf(emulator, 'im_get_tag', get)).toBe(0);
  });

  it('sets the latency', async () => {
    expect((await control('POST', 'latency', { ms: 120 })).json).toMatchObject({ ok: true, latencyMs: 120 });
    expect(emulator.latencyMs).toBe(120);
    expect((await callTim(emulator, 'im_get_tag', { To_Account: ['alice'] })).ms).toBeGreaterThanOrEqual(110);
    await control('POST', 'latency', { ms: 0 });
    expect((await control('POST', 'latency', { ms: -1 })).status).toBe(400);
  });

  it('shows the store, one account or all of it', async () => {
    const alice = await control('GET', 'store?account=alice');
    expect(alice.json).toEqual({ To_Account: 'alice', Tags: emulator.store.getTags('alice'), exists: true });
    expect((await control('GET', 'store?account=ghost')).json).toEqual({
      To_Account: 'ghost',
      Tags: [],
      exists: false,
    });
    const all = (await control('GET', 'store')).json as { accounts: number; distinctTags: number; UserTags: unknown[] };
    expect(all.accounts).toBe(emulator.store.accounts().length);
    expect(all.distinctTags).toBe(emulator.store.distinctTags());
  });

  it('answers 404 to an unknown control route', async () => {
    expect((await control('GET', 'nothing')).status).toBe(404);
  });
});

describe('close', () => {
  it('closes promptly with keep-alive connections and answers still waiting', async () => {
    const e = await startEmulator({ seed: 'empty' });
    expect(await codeOf(e, 'im_get_tag', { To_Account: ['a'] })).toBe(0); // leaves a keep-alive socket open
    e.injectFault({ hangMs: 10_000 });
    const hanging = callTim(e, 'im_get_tag', { To_Account: ['a'] }).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 50));
    const started = performance.now();
    await e.close();
    expect(performance.now() - started).toBeLessThan(500);
    expect(await hanging).toBeInstanceOf(Error);
    await e.close(); // a second close is harmless
  });

  it('refuses bad options, naming them', async () => {
    await expect(startEmulator({ maxCallsPerSecond: 0 })).rejects.toThrow(/maxCallsPerSecond/);
    await expect(startEmulator({ seed: [{ To_Account: '', Tags: [] }] })).rejects.toThrow(/is empty/);
  });
});

describe('recorded calls', () => {
  it('keeps at most maxRecordedCalls, dropping the oldest', async () => {
    const { signUserSig } = await import('../../src/tim/usersig.js');
    const { TimEmulator } = await import('../../src/emulator/index.js');
    const emulator = await TimEmulator.start({
      sdkappid: 1,
      secretKey: 'k',
      adminIdentifier: 'admin',
      maxRecordedCalls: 4,
    });
    try {
      const sig = signUserSig(
        { sdkappid: 1, identifier: 'admin', time: Math.floor(Date.now() / 1000), expire: 3600 },
        'k',
      );
      for (let i = 0; i < 9; i++) {
        await fetch(
          `${emulator.url}/v4/all_member_push/im_get_tag?sdkappid=1&identifier=admin&usersig=${sig}&random=${i}&contenttype=json`,
          {
            method: 'POST',
            body: JSON.stringify({ To_Account: [`a${i}`] }),
          },
        );
      }
      expect(emulator.calls.length).toBeLessThanOrEqual(4);
      expect(emulator.calls.at(-1)!.accounts).toEqual(['a8']);
    } finally {
      await emulator.close();
    }
  });
});
