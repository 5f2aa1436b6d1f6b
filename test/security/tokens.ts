/** Signs the tokens the security tests present. */
import { base64url, SignJWT, type CryptoKey, type KeyObject } from 'jose';

export const JWT_SECRET = 'test-jwt-secret-0123456789-abcdefghijklmnop';
export const ISSUER = 'https://issuer.test';
export const AUDIENCE = 'tim-tags-graphql';

export interface TokenOptions {
  sub?: string | null;
  scope?: string;
  /** Seconds from now; negative for a token already expired. */
  expiresIn?: number | null;
  notBefore?: number;
  issuer?: string | null;
  audience?: string | null;
  key?: Uint8Array | CryptoKey | KeyObject;
  alg?: string;
  kid?: string;
}

export async function token(opts: TokenOptions = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT(opts.scope === undefined ? {} : { scope: opts.scope })
    .setProtectedHeader({ alg: opts.alg ?? 'HS256', ...(opts.kid ? { kid: opts.kid } : {}) })
    .setIssuedAt(now);
  if (opts.sub !== null) jwt.setSubject(opts.sub ?? 'alice');
  if (opts.expiresIn !== null) jwt.setExpirationTime(now + (opts.expiresIn ?? 3600));
  if (opts.notBefore !== undefined) jwt.setNotBefore(now + opts.notBefore);
  if (opts.issuer !== null) jwt.setIssuer(opts.issuer ?? ISSUER);
  if (opts.audience !== null) jwt.setAudience(opts.audience ?? AUDIENCE);
  return jwt.sign(opts.key ?? new TextEncoder().encode(JWT_SECRET));
}

/** An unsecured token (`alg: none`) claiming whatever it likes. */
export function unsecuredToken(claims: Record<string, unknown>): string {
  const part = (v: unknown) => base64url.encode(JSON.stringify(v));
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

export const bearer = (jwt: string) => ({ authorization: `Bearer ${jwt}` });
