/** Issue 6: the logger itself blanks credentials, wherever in a logged object they sit. */
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';

const SECRET_KEY = 'tim-secret-key-that-must-never-be-logged';
const JWT = 'jwt-secret-that-must-never-be-logged-0123456789';
const SIG = 'eJyrVkrxCdZRslIqSy1SslIyUqoFAFtlB*o_';
const TOKEN = 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';

describe('log redaction', () => {
  it('blanks the secret key, the JWT secret, usersigs and Authorization headers', () => {
    const lines: string[] = [];
    const log = createLogger('debug', { destination: { write: (line: string) => void lines.push(line) } });
    const env = { TIM_SDKAPPID: '1400000001', TIM_SECRET_KEY: SECRET_KEY, JWT_SECRET: JWT };
    const config = loadConfig(env);
    log.info({ config }, 'a whole config');
    log.info({ env }, 'the environment');
    log.info(env, 'the environment, flat');
    log.info({ tim: config.tim, auth: config.auth }, 'config parts');
    log.info(
      { authorization: TOKEN, headers: { authorization: TOKEN }, req: { headers: { authorization: TOKEN } } },
      'headers',
    );
    log.info({ usersig: SIG, upstream: { usersig: SIG } }, 'usersig');
    expect(lines).toHaveLength(6);
    const all = lines.join('');
    for (const secret of [SECRET_KEY, JWT, SIG, TOKEN]) expect(all).not.toContain(secret);
    expect(all.match(/\[redacted\]/g)!.length).toBeGreaterThanOrEqual(12);
  });
});
