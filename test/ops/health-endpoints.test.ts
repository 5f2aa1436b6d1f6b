/** Issue 10: /healthz and /readyz are the only health answers; graphql-yoga's own `/health` is off. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRig, type TestRig } from '../helpers/gateway.js';

let rig: TestRig;
beforeAll(async () => {
  rig = await startRig({ emulator: { seed: [{ To_Account: 'u1', Tags: ['t'] }] } });
});
afterAll(() => rig.close());

describe('health endpoints', () => {
  it("answers yoga's /health as any unknown path: a coded 404", async () => {
    const res = await fetch(`${rig.url}/health`);
    expect(res.status).toBe(404);
    expect(res.headers.get('x-yoga-id')).toBeNull();
    expect(((await res.json()) as { errors: Array<{ extensions: { code: string } }> }).errors[0]!.extensions.code).toBe(
      'NOT_FOUND',
    );
  });

  it('runs a GET query whose URL ends with /health instead of answering it as a health check', async () => {
    const query = encodeURIComponent('{ user(id: "u1") { tags } }');
    const res = await fetch(`${rig.url}/graphql?query=${query}&x=/health`, { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { user: { tags: ['t'] } } });
  });

  it('keeps /healthz and /readyz', async () => {
    expect((await fetch(`${rig.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${rig.url}/readyz`)).status).toBe(200);
  });
});
