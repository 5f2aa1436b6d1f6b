/**
 * TLSSigAPIv2: the admin UserSig that authenticates every REST call.
 *
 * Signing and verifying live together so the emulator checks signatures with
 * exactly the algorithm the client uses (and tests pin both to vectors made
 * by Tencent's official `tls-sig-api-v2` package).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { deflateSync, inflateSync } from 'node:zlib';

export interface SigFields {
  sdkappid: number;
  identifier: string;
  /** Unix seconds the signature was made. */
  time: number;
  /** Seconds of validity after `time`. */
  expire: number;
}

function hmacOf(fields: SigFields, secretKey: string): string {
  const text =
    `TLS.identifier:${fields.identifier}\n` +
    `TLS.sdkappid:${fields.sdkappid}\n` +
    `TLS.time:${fields.time}\n` +
    `TLS.expire:${fields.expire}\n`;
  return createHmac('sha256', secretKey).update(text, 'utf8').digest('base64');
}

/** Tencent's URL-safe base64 variant: `+` -> `*`, `/` -> `-`, `=` -> `_`. */
function escapeBase64(b64: string): string {
  return b64.replace(/\+/g, '*').replace(/\//g, '-').replace(/=/g, '_');
}

function unescapeBase64(sig: string): string {
  return sig.replace(/\*/g, '+').replace(/-/g, '/').replace(/_/g, '=');
}

export function signUserSig(fields: SigFields, secretKey: string): string {
  const doc = {
    'TLS.ver': '2.0',
    'TLS.identifier': fields.identifier,
    'TLS.sdkappid': fields.sdkappid,
    'TLS.expire': fields.expire,
    'TLS.time': fields.time,
    'TLS.sig': hmacOf(fields, secretKey),
  };
  return escapeBase64(deflateSync(Buffer.from(JSON.stringify(doc))).toString('base64'));
}

/** Why a UserSig was refused, as TIM's error codes name it. */
export type SigProblem =
  | { code: 70002; reason: 'UserSig is empty' }
  | { code: 70003; reason: 'UserSig could not be decoded' }
  | { code: 70001; reason: 'UserSig has expired' }
  | { code: 70009; reason: 'UserSig was signed with another key' }
  | { code: 70013; reason: 'identifier differs from the one in the UserSig' }
  | { code: 70014; reason: 'sdkappid differs from the one in the UserSig' };

export interface VerifyInput {
  userSig: string;
  sdkappid: number;
  identifier: string;
  secretKey: string;
  /** Unix seconds; defaults to now. */
  now?: number;
}

/** Reverses {@link signUserSig}; returns the first problem found, or null when the sig is good. */
export function verifyUserSig(input: VerifyInput): SigProblem | null {
  if (!input.userSig) return { code: 70002, reason: 'UserSig is empty' };
  const doc = decodeDoc(input.userSig);
  if (!doc) return { code: 70003, reason: 'UserSig could not be decoded' };
  if (doc.sdkappid !== input.sdkappid) {
    return { code: 70014, reason: 'sdkappid differs from the one in the UserSig' };
  }
  if (doc.identifier !== input.identifier) {
    return { code: 70013, reason: 'identifier differs from the one in the UserSig' };
  }
  const expected = Buffer.from(hmacOf(doc, input.secretKey));
  const given = Buffer.from(doc.sig);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
    return { code: 70009, reason: 'UserSig was signed with another key' };
  }
  const now = input.now ?? Math.floor(Date.now() / 1000);
  if (now > doc.time + doc.expire) return { code: 70001, reason: 'UserSig has expired' };
  return null;
}

interface SigDoc extends SigFields {
  sig: string;
}

function decodeDoc(userSig: string): SigDoc | null {
  try {
    const json: unknown = JSON.parse(inflateSync(Buffer.from(unescapeBase64(userSig), 'base64')).toString('utf8'));
    if (typeof json !== 'object' || json === null) return null;
    const d = json as Record<string, unknown>;
    const fields = {
      sdkappid: Number(d['TLS.sdkappid']),
      identifier: d['TLS.identifier'],
      time: Number(d['TLS.time']),
      expire: Number(d['TLS.expire']),
      sig: d['TLS.sig'],
    };
    if (typeof fields.identifier !== 'string' || typeof fields.sig !== 'string') return null;
    if (![fields.sdkappid, fields.time, fields.expire].every(Number.isFinite)) return null;
    return fields as SigDoc;
  } catch {
    return null;
  }
}

/**
 * Keeps one admin UserSig and signs a new one well before it expires, so the
 * hot path never pays for HMAC + deflate on every call.
 */
export class AdminSigner {
  private current: { sig: string; time: number; expire: number; renewAt: number } | null = null;

  constructor(
    private readonly opts: { sdkappid: number; identifier: string; secretKey: string; expireSeconds?: number },
    private readonly nowMs: () => number = Date.now,
  ) {}

  get identifier(): string {
    return this.opts.identifier;
  }

  /** The cached sig, renewed once half its validity has passed. */
  sig(): string {
    const now = this.nowMs();
    if (!this.current || now >= this.current.renewAt) this.renew();
    return this.current!.sig;
  }

  /** Signs anew at once (after the upstream said 70001: expired). */
  renew(): void {
    const time = Math.floor(this.nowMs() / 1000);
    let expire = this.opts.expireSeconds ?? 7 * 24 * 3600;
    // Signed again within the same second, the same fields would give the same sig: a renewal
    // must hand the upstream a new one, so it asks one second less of validity.
    if (this.current && this.current.time === time) expire = this.current.expire - 1;
    const sig = signUserSig(
      { sdkappid: this.opts.sdkappid, identifier: this.opts.identifier, time, expire },
      this.opts.secretKey,
    );
    this.current = { sig, time, expire, renewAt: (time + expire / 2) * 1000 };
  }
}
