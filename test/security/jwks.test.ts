/** Issue 6: AUTH_MODE=jwt with JWT_JWKS_URL, against a key set served by a tiny local HTTP server. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, type CryptoKey } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startRig, type TestRig } from '../helpers/gateway.js';
import { bearer, token } from './tokens.js';

let jwks: Server;
let jwksUrl: string;
let jwksFetches = 0;
let rig: TestRig;
const keys: Record<'rsa' | 'ec' | 'stranger', { privateKey: CryptoKey; publicKey: CryptoKey }> = {} as never;

beforeAll(async () => {
  keys.rsa = await generateKeyPair('RS256', { extractable: true });
  keys.ec = await generateKeyPair('ES256', { extractable: true });
  keys.stranger = await generateKeyPair('RS256', { extractable: true });
  const set = {
    keys: [
      { ...(await exportJWK(keys.rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(keys.ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    ],
  };
  jwks = createServer((_req, res) => {
    jwksFetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(set));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
  rig = await startRig({ env: { AUTH_MODE: 'jwt', JWT_JWKS_URL: jwksUrl } });
});
afterAll(async () => {
  await rig.close();
  await new Promise((resolve) => jwks.close(resolve));
});
beforeEach(() => rig.emulator.resetCalls());

const OWN = '{ user(id: "alice") { id tags } }';
const plain = { issuer: null, audience: null };

describe('tokens checked against a JWKS', () => {
  it('accepts RS256 and ES256 tokens signed by keys of the set', async () => {
    for (const [key, alg, kid] of [
      [keys.rsa, 'RS256', 'rsa-1'],
      [keys.ec, 'ES256', 'ec-1'],
    ] as const) {
      const res = await rig.query(OWN, undefined, bearer(await token({ ...plain, key: key.privateKey, alg, kid })));
      expect(res.status).toBe(200);
      expect(res.errors).toBeUndefined();
      expect(res.data).toEqual({ user: { id: 'alice', tags: expect.any(Array) } });
    }
    expect(jwksFetches).toBeGreaterThanOrEqual(1);
  });

  it('applies the same scope rules', async () => {
    const jwt = await token({ ...plain, key: keys.rsa.privateKey, alg: 'RS256', kid: 'rsa-1' });
    const res = await rig.query('{ user(id: "bob") { tags } }', undefined, bearer(jwt));
    expect(res.status).toBe(403);
    expect(res.errors![0]!.extensions?.code).toBe('FORBIDDEN');
    expect(rig.emulator.calls).toEqual([]);
  });

  it.each([
    [
      'signed by a key outside the set, under a known kid',
      async () => token({ ...plain, key: keys.stranger.privateKey, alg: 'RS256', kid: 'rsa-1' }),
    ],
    [
      'with a kid the set does not have',
      async () => token({ ...plain, key: keys.stranger.privateKey, alg: 'RS256', kid: 'nope' }),
    ],
    [
      'signed HS256 with the public key as the HMAC secret',
      async () => {
        const pem = await exportSPKI(keys.rsa.publicKey);
        return token({ ...plain, key: new TextEncoder().encode(pem), alg: 'HS256', kid: 'rsa-1' });
      },
    ],
    [
      'with an ES256 header over an RSA key',
      async () => token({ ...plain, key: keys.ec.privateKey, alg: 'ES256', kid: 'rsa-1' }),
    ],
  ])('refuses a token %s', async (_label, make) => {
    const res = await rig.query(OWN, undefined, bearer(await make()));
    expect(res.status).toBe(401);
    expect(res.errors![0]!.extensions?.code).toBe('UNAUTHENTICATED');
    expect(rig.emulator.calls).toEqual([]);
  });

  it('refuses tokens, with a 401 and not a 5xx, while the key set cannot be fetched', async () => {
    const down = createServer();
    await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(down.address() as AddressInfo).port}/jwks.json`;
    await new Promise((resolve) => down.close(resolve));
    await expectKeySetUnavailable(url);
  });

  it('refuses tokens as the key set being unavailable, not as bad tokens, while it answers with an error', async () => {
    const failing = createServer((_req, res) => res.writeHead(503).end('down for maintenance'));
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(failing.address() as AddressInfo).port}/jwks.json`;
    try {
      await expectKeySetUnavailable(url);
    } finally {
      await new Promise((resolve) => failing.close(resolve));
    }
  });
});

/** A gateway whose JWT_JWKS_URL is `url` refuses a good token as 401 "key set unavailable", with no upstream call. */
async function expectKeySetUnavailable(url: string): Promise<void> {
  const other = await startRig({ env: { AUTH_MODE: 'jwt', JWT_JWKS_URL: url } });
  try {
    const res = await other.query(
      OWN,
      undefined,
      bearer(await token({ ...plain, key: keys.rsa.privateKey, alg: 'RS256', kid: 'rsa-1' })),
    );
    expect(res.status).toBe(401);
    expect(res.errors![0]!.extensions?.code).toBe('UNAUTHENTICATED');
    expect(res.errors![0]!.message).toMatch(/key set/);
    expect(other.emulator.calls).toEqual([]);
  } finally {
    await other.close();
  }
}
