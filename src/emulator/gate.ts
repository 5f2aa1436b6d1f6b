/**
 * The checks every tag call passes before its body is looked at, in the service's order:
 * sdkappid, UserSig, admin identity, then the remaining query parameters.
 */
import { inflateSync } from 'node:zlib';
import { verifyUserSig } from '../tim/usersig.js';
import { TimCode } from '../tim/wire.js';
import type { Refusal } from './types.js';

export interface AppCredentials {
  sdkappid: number;
  secretKey: string;
  adminIdentifier: string;
}

/** Distinct good sigs remembered; a load test uses one or two, so this never fills in practice. */
const VERIFIED_SIGS_KEPT = 1024;
const MAX_UINT32 = 0xffffffff;

export class RequestGate {
  private readonly sdkappidText: string;
  /** Good sig -> the identifier it was verified for and its last valid second. */
  private readonly verified = new Map<string, { identifier: string; lastValidSecond: number }>();

  constructor(private readonly app: AppCredentials) {
    this.sdkappidText = String(app.sdkappid);
  }

  check(query: Record<string, string>, nowMs: number): Refusal | null {
    const { sdkappid, identifier = '', usersig = '', random, contenttype } = query;
    if (!sdkappid) return { code: TimCode.SDKAPPID_MISSING, info: 'sdkappid is missing from the query' };
    if (sdkappid !== this.sdkappidText) {
      return { code: TimCode.SDKAPPID_INVALID, info: `sdkappid ${sdkappid} is not this app's SDKAppID` };
    }
    const sigRefusal = this.checkSig(usersig, identifier, Math.floor(nowMs / 1000));
    if (sigRefusal) return sigRefusal;
    if (identifier !== this.app.adminIdentifier) {
      return { code: TimCode.NEEDS_ADMIN, info: `identifier ${JSON.stringify(identifier)} is not the app admin` };
    }
    // The documentation names no code for a bad `random` or `contenttype`; this project answers
    // 70402 (invalid parameters), as for any other malformed parameter.
    if (random === undefined || !/^\d{1,10}$/.test(random) || Number(random) > MAX_UINT32) {
      return {
        code: TimCode.INVALID_PARAMETERS,
        info: `random must be a uint32, got ${JSON.stringify(random ?? null)}`,
      };
    }
    if (contenttype !== 'json') {
      return {
        code: TimCode.INVALID_PARAMETERS,
        info: `contenttype must be json, got ${JSON.stringify(contenttype ?? null)}`,
      };
    }
    return null;
  }

  /**
   * HMAC + inflate run once per distinct good sig; after that only the identifier and the
   * expiry are checked again. Bad sigs are not remembered, so each gets the full check.
   */
  private checkSig(userSig: string, identifier: string, nowSecond: number): Refusal | null {
    const known = this.verified.get(userSig);
    if (known && known.identifier === identifier) {
      if (nowSecond <= known.lastValidSecond) return null;
      this.verified.delete(userSig);
    }
    const problem = verifyUserSig({
      userSig,
      identifier,
      sdkappid: this.app.sdkappid,
      secretKey: this.app.secretKey,
      now: nowSecond,
    });
    if (problem) return { code: problem.code, info: problem.reason };
    const lastValidSecond = lastValidSecondOf(userSig);
    if (lastValidSecond !== null) {
      if (this.verified.size >= VERIFIED_SIGS_KEPT) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(userSig, { identifier, lastValidSecond });
    }
    return null;
  }
}

/** TLS.time + TLS.expire of a sig verifyUserSig has accepted (it does not hand the document out). */
function lastValidSecondOf(userSig: string): number | null {
  try {
    const base64 = userSig.replace(/\*/g, '+').replace(/-/g, '/').replace(/_/g, '=');
    const doc = JSON.parse(inflateSync(Buffer.from(base64, 'base64')).toString('utf8')) as Record<string, unknown>;
    const last = Number(doc['TLS.time']) + Number(doc['TLS.expire']);
    return Number.isFinite(last) ? last : null;
  } catch {
    return null;
  }
}
