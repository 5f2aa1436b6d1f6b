import { createRequire } from 'node:module';
import { deflateSync, inflateSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { AdminSigner, signUserSig, verifyUserSig, type SigFields } from '../../src/tim/usersig.js';

/** Tencent's official signer (CommonJS, no types): the reference the project's signer must match. */
interface OfficialApi {
  genSig(identifier: string, expire: number): string;
}
const require = createRequire(import.meta.url);
const TLSSigAPIv2 = require('tls-sig-api-v2') as { Api: new (sdkappid: number, key: string) => OfficialApi };

const key = 'reference-secret-key-0123456789abcdef';
const fields: SigFields = { sdkappid: 1400000123, identifier: 'administrator', time: 1_700_000_000, expire: 86400 };

function officialSig(f: SigFields = fields, secretKey = key): string {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(f.time * 1000 + 400);
  try {
    return new TLSSigAPIv2.Api(f.sdkappid, secretKey).genSig(f.identifier, f.expire);
  } finally {
    vi.useRealTimers();
  }
}

function decode(sig: string): Record<string, unknown> {
  const base64 = sig.replace(/\*/g, '+').replace(/-/g, '/').replace(/_/g, '=');
  return JSON.parse(inflateSync(Buffer.from(base64, 'base64')).toString('utf8')) as Record<string, unknown>;
}

function encode(doc: Record<string, unknown>): string {
  return deflateSync(Buffer.from(JSON.stringify(doc)))
    .toString('base64')
    .replace(/\+/g, '*')
    .replace(/\//g, '-')
    .replace(/=/g, '_');
}

afterEach(() => {
  vi.useRealTimers();
});

describe('signUserSig against tls-sig-api-v2', () => {
  it('makes the same document as the official signer (the bytes differ only by JSON key order)', () => {
    const official = officialSig();
    const ours = signUserSig(fields, key);
    expect(decode(ours)).toEqual(decode(official));
    expect(decode(ours)).toMatchObject({
      'TLS.ver': '2.0',
      'TLS.identifier': fields.identifier,
      'TLS.sdkappid': fields.sdkappid,
      'TLS.time': fields.time,
      'TLS.expire': fields.expire,
    });
  });

  it('matches for other identifiers, apps and validities too', () => {
    for (const f of [
      { ...fields, identifier: 'user_42-x' },
      { ...fields, sdkappid: 20000001, expire: 180 * 86400 },
      { ...fields, time: 1_600_000_123, expire: 1 },
    ]) {
      expect(decode(signUserSig(f, 'k'))).toEqual(decode(officialSig(f, 'k')));
    }
  });
});

describe('verifyUserSig', () => {
  const input = { sdkappid: fields.sdkappid, identifier: fields.identifier, secretKey: key, now: fields.time + 10 };

  it('accepts a sig made by the official signer', () => {
    expect(verifyUserSig({ ...input, userSig: officialSig() })).toBeNull();
  });

  it('accepts up to and including the last valid second, then answers 70001', () => {
    const userSig = officialSig();
    expect(verifyUserSig({ ...input, userSig, now: fields.time + fields.expire })).toBeNull();
    expect(verifyUserSig({ ...input, userSig, now: fields.time + fields.expire + 1 })?.code).toBe(70001);
  });

  it('rejects a tampered sig', () => {
    const doc = decode(officialSig());
    const sig = String(doc['TLS.sig']);
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    expect(verifyUserSig({ ...input, userSig: encode({ ...doc, 'TLS.sig': flipped }) })?.code).toBe(70009);
    // Stretching the validity without re-signing breaks the HMAC too.
    expect(verifyUserSig({ ...input, userSig: encode({ ...doc, 'TLS.expire': 10 * 365 * 86400 }) })?.code).toBe(70009);
    expect(verifyUserSig({ ...input, userSig: officialSig().slice(0, 20) })?.code).toBe(70003);
  });

  it('names each problem with its TIM code', () => {
    const userSig = officialSig();
    expect(verifyUserSig({ ...input, userSig: '' })?.code).toBe(70002);
    expect(verifyUserSig({ ...input, userSig, secretKey: 'another' })?.code).toBe(70009);
    expect(verifyUserSig({ ...input, userSig, identifier: 'alice' })?.code).toBe(70013);
    expect(verifyUserSig({ ...input, userSig, sdkappid: 1 })?.code).toBe(70014);
  });
});

describe('AdminSigner', () => {
  const opts = { sdkappid: fields.sdkappid, identifier: 'administrator', secretKey: key, expireSeconds: 3600 };

  it('keeps one sig, renews it once half its validity has passed, and renews on demand', () => {
    let now = fields.time * 1000;
    const signer = new AdminSigner(opts, () => now);
    const first = signer.sig();
    expect(verifyUserSig({ ...opts, userSig: first, now: fields.time })).toBeNull();
    now += 1_799_000;
    expect(signer.sig()).toBe(first);
    now += 1_000;
    const second = signer.sig();
    expect(second).not.toBe(first);
    expect(decode(second)['TLS.time']).toBe(fields.time + 1800);
    expect(signer.sig()).toBe(second);
    now += 5_000;
    signer.renew();
    expect(decode(signer.sig())['TLS.time']).toBe(fields.time + 1805);
    expect(signer.identifier).toBe('administrator');
  });

  it('hands out a different, valid sig when renewed within the same second', () => {
    const signer = new AdminSigner(opts, () => fields.time * 1000 + 300);
    const first = signer.sig();
    signer.renew();
    const second = signer.sig();
    signer.renew();
    const third = signer.sig();
    expect(new Set([first, second, third]).size).toBe(3);
    for (const sig of [second, third]) expect(verifyUserSig({ ...opts, userSig: sig, now: fields.time })).toBeNull();
  });

  it('signs with a week of validity by default', () => {
    const signer = new AdminSigner({ ...opts, expireSeconds: undefined }, () => fields.time * 1000);
    expect(decode(signer.sig())['TLS.expire']).toBe(7 * 24 * 3600);
  });
});
