/** Issue 6: what a web page may make a browser do with the gateway: CSRF prevention and CORS from CORS_ORIGINS. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRig, type TestRig } from '../helpers/gateway.js';
import { bearer, JWT_SECRET, token } from './tokens.js';

let rig: TestRig;

beforeAll(async () => {
  rig = await startRig({ env: { GRAPHIQL: 'true' } });
});
afterAll(() => rig.close());
beforeEach(() => rig.emulator.resetCalls());

const QUERY = '{ user(id: "alice") { tags } }';
const get = (query: string, headers: Record<string, string> = {}) =>
  fetch(`${rig.url}/graphql?query=${encodeURIComponent(query)}`, {
    headers: { accept: 'application/json', ...headers },
  });

describe('CSRF prevention', () => {
  it('serves a GET query with no preflight header (it only reads), but never a mutation over GET', async () => {
    const res = await get(QUERY);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { user: { tags: expect.any(Array) } } });
    rig.emulator.resetCalls();
    const mutation = await get('mutation { removeAllUserTags(ids: ["alice"]) { id } }');
    expect(mutation.status).toBe(405);
    expect(rig.emulator.calls).toEqual([]);
  });

  it.each([
    ['text/plain', JSON.stringify({ query: QUERY })],
    ['application/x-www-form-urlencoded', `query=${encodeURIComponent(QUERY)}`],
    [
      'multipart/form-data; boundary=x',
      `--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n${JSON.stringify({ query: QUERY })}\r\n--x--\r\n`,
    ],
  ])('refuses a simple POST of %s', async (contentType, body) => {
    const res = await fetch(`${rig.url}/graphql`, { method: 'POST', headers: { 'content-type': contentType }, body });
    expect(res.status).toBe(403);
    expect((await res.json()).errors[0].extensions).toEqual({ code: 'CSRF_HEADER_REQUIRED' });
    expect(rig.emulator.calls).toEqual([]);
  });

  it('serves a GET that carries a preflight header, and JSON POSTs as fetch, curl and GraphiQL send them', async () => {
    for (const header of ['x-graphql-yoga-csrf', 'apollo-require-preflight']) {
      const res = await get(QUERY, { [header]: '1' });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ data: { user: { tags: expect.any(Array) } } });
    }
    const posted = await rig.query(QUERY);
    expect(posted.status).toBe(200);
    expect(posted.errors).toBeUndefined();
    const graphiqlLike = await fetch(`${rig.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, multipart/mixed', origin: rig.url },
      body: JSON.stringify({ query: QUERY, operationName: null }),
    });
    expect(graphiqlLike.status).toBe(200);
  });

  it('still serves GraphiQL to a browser', async () => {
    const res = await fetch(`${rig.url}/graphql`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(await res.text()).toMatch(/graphiql/i);
  });
});

describe('CORS', () => {
  const preflight = (url: string, origin: string) =>
    fetch(`${url}/graphql`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, authorization',
      },
    });

  it('gives no origin cross-origin access when CORS_ORIGINS is unset', async () => {
    for (const origin of ['https://evil.test', 'null', rig.url]) {
      const pre = await preflight(rig.url, origin);
      expect(pre.headers.get('access-control-allow-origin')).toBeNull();
      const res = await rig.query(QUERY, undefined, { origin });
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    }
  });

  it('gives CORS headers only to the listed origins (in jwt mode too)', async () => {
    const listed = ['https://app.example.com', 'http://localhost:5173'];
    const other = await startRig({
      env: { CORS_ORIGINS: listed.join(', '), AUTH_MODE: 'jwt', JWT_SECRET },
      sharedEmulator: { emulator: rig.emulator, secretKey: rig.secretKey },
    });
    try {
      const auth = bearer(await token({ issuer: null, audience: null }));
      for (const origin of listed) {
        const pre = await preflight(other.url, origin);
        expect(pre.status).toBe(204);
        expect(pre.headers.get('access-control-allow-origin')).toBe(origin);
        expect(pre.headers.get('access-control-allow-headers')).toMatch(/authorization/);
        expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
        const res = await other.query(QUERY, undefined, { origin, ...auth });
        expect(res.status).toBe(200);
        expect(res.headers.get('access-control-allow-origin')).toBe(origin);
        expect(res.headers.get('access-control-expose-headers')).toMatch(/x-request-id/);
      }
      for (const origin of ['https://evil.test', 'null', 'https://app.example.com.evil.test']) {
        expect((await preflight(other.url, origin)).headers.get('access-control-allow-origin')).toBeNull();
        const res = await other.query(QUERY, undefined, { origin, ...auth });
        expect(res.headers.get('access-control-allow-origin')).toBeNull();
      }
    } finally {
      await other.close();
    }
  });
});
