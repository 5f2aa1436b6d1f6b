/** Issues 6 and 15: with real TIM credentials the gateway is never an open admin proxy, nor sends a secret in clear, by accident. */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TimEmulator } from '../../src/emulator/index.js';
import { ROOT } from '../helpers/paths.js';
import { spawnGateway } from '../helpers/process.js';

const SECRET_KEY = 'real-looking-secret-key-0123456789abcdef';

function start(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`still running after 20 s: ${out}`));
    }, 20_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe('starting with real credentials', () => {
  it.each([
    ['AUTH_MODE unset', {}],
    ['AUTH_MODE=jwt', { AUTH_MODE: 'jwt' }],
  ])('refuses to start with %s and neither JWT_SECRET nor JWT_JWKS_URL, in one line', async (_label, extra) => {
    const { code, out } = await start({ TIM_SDKAPPID: '1400000001', TIM_SECRET_KEY: SECRET_KEY, ...extra });
    expect(code).not.toBe(0);
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/JWT_SECRET.*JWT_JWKS_URL/);
    expect(out).not.toContain(SECRET_KEY);
  });

  it('refuses a JWT_SECRET too short for HS256 without echoing it', async () => {
    const { code, out } = await start({
      TIM_SDKAPPID: '1400000001',
      TIM_SECRET_KEY: SECRET_KEY,
      JWT_SECRET: 'short-secret',
    });
    expect(code).not.toBe(0);
    expect(out).toMatch(/JWT_SECRET: must be at least 32/);
    expect(out).not.toContain('short-secret');
  });
});

describe('no secret over plain HTTP', () => {
  it.each([
    ['TIM_BASE_URL', { TIM_BASE_URL: 'http://console.tim.qq.com', JWT_SECRET: 's'.repeat(40) }],
    ['JWT_JWKS_URL', { JWT_JWKS_URL: 'http://issuer.example.com/.well-known/jwks.json' }],
  ])('refuses a plain-http %s in one line naming it', async (name, extra) => {
    const { code, out } = await start({ TIM_SDKAPPID: '1400000001', TIM_SECRET_KEY: SECRET_KEY, ...extra });
    expect(code).not.toBe(0);
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`${name}: must be https://`));
    expect(out).not.toContain(SECRET_KEY);
  });
});

describe('AUTH_MODE=none with real credentials', () => {
  it('starts, and logs a warning that the gateway is an open admin proxy', async () => {
    const secretKey = randomBytes(24).toString('hex');
    const emulator = await TimEmulator.start({ sdkappid: 1400000002, secretKey, adminIdentifier: 'administrator' });
    try {
      const gateway = await spawnGateway({
        TIM_SDKAPPID: '1400000002',
        TIM_SECRET_KEY: secretKey,
        TIM_BASE_URL: emulator.url,
        AUTH_MODE: 'none',
      });
      try {
        await expect
          .poll(() => gateway.output(), { timeout: 5000 })
          .toMatch(/"level":40.*AUTH_MODE=none with real TIM credentials: this gateway is an open admin proxy/);
      } finally {
        await gateway.stop();
      }
    } finally {
      await emulator.close();
    }
  });
});
