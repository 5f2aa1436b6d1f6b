/**
 * Issue 7: SIGTERM stops a real gateway process cleanly: no new connections, the request
 * waiting on a slow upstream call is still answered, then the process exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TimEmulator } from '../../src/emulator/index.js';
import { ADMIN, callsOf, postGraphQL, SDKAPPID } from '../helpers/gateway.js';
import { LOG_DIR, ROOT } from '../helpers/paths.js';
import { freePort } from '../helpers/process.js';

const LATENCY_MS = 2000;
const secretKey = randomBytes(24).toString('hex');
let emulator: TimEmulator;
let child: ChildProcess | null = null;

beforeAll(async () => {
  emulator = await TimEmulator.start({
    sdkappid: SDKAPPID,
    secretKey,
    adminIdentifier: ADMIN,
    port: 0,
    latencyMs: LATENCY_MS,
  });
});
afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await emulator.close();
});

/** `npm start`'s gateway (from source) against the emulator, its stdout and stderr piped to the test. */
function spawnGateway(port: number): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      TIM_SDKAPPID: String(SDKAPPID),
      TIM_SECRET_KEY: secretKey,
      TIM_BASE_URL: emulator.url,
      AUTH_MODE: 'none',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Whether a fresh TCP connection to the port is accepted (true) or refused (false). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('SIGTERM', () => {
  it(
    'refuses new connections, answers the request in flight with its tags, then exits 0',
    { timeout: 60_000 },
    async () => {
      const port = await freePort();
      let output = '';
      child = spawnGateway(port);
      child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
        // 'close', not 'exit': by then every line the process wrote has been read.
        child!.once('close', (code, signal) => {
          // Kept with the other gateways' logs, which the suite checks for secrets.
          writeFileSync(join(LOG_DIR, `shutdown-${randomUUID()}.log`), output);
          resolve({ code, signal, at: Date.now() });
        }),
      );
      await until(
        'the gateway to listen',
        () => output.includes('gateway listening') || child!.exitCode !== null,
        40_000,
      );
      expect(child.exitCode, output).toBeNull();
      const url = `http://127.0.0.1:${port}`;

      let answeredAt = 0;
      const answer = postGraphQL<{ user: { id: string; tags: string[] } }>(
        url,
        '{ user(id: "alice") { id tags } }',
      ).then((res) => {
        answeredAt = Date.now();
        return res;
      });
      // SIGTERM once the lookup waits on the slow upstream.
      await until('the upstream call', () => callsOf(emulator).length > 0, 10_000);
      child.kill('SIGTERM');

      await until('new connections to be refused', async () => !(await accepts(port)), LATENCY_MS - 500);
      expect(answeredAt, 'connections were still taken after the answer').toBe(0);

      const res = await answer;
      expect(res.status).toBe(200);
      expect(res.errors).toBeUndefined();
      expect(res.data!.user).toEqual({ id: 'alice', tags: emulator.store.getTags('alice') });
      expect(res.data!.user.tags.length).toBeGreaterThan(0);

      const exit = await exited;
      expect({ code: exit.code, signal: exit.signal }, output).toEqual({ code: 0, signal: null });
      expect(exit.at).toBeGreaterThanOrEqual(answeredAt);
      // Promptly: not held open until the client's idle keep-alive connection times out (about 3 s or more).
      expect(exit.at - answeredAt).toBeLessThan(2000);
      expect(output).toContain('stopping: finishing requests in flight');
      expect(output).toContain('"msg":"stopped"');
    },
  );

  it('exits 0 when the reader of its log has gone away (stdout a closed pipe)', { timeout: 60_000 }, async () => {
    const port = await freePort();
    let output = '';
    child = spawnGateway(port);
    child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child!.once('exit', (code, signal) => resolve({ code, signal })),
    );
    await until(
      'the gateway to listen',
      () => output.includes('gateway listening') || child!.exitCode !== null,
      40_000,
    );
    // A log shipper that died, or `npm start | head`: every line logged from now on meets EPIPE.
    child.stdout!.destroy();
    child.stderr!.destroy();
    // Nothing is logged between: the first line to meet the closed pipe is the one SIGTERM logs.
    child.kill('SIGTERM');
    const stop = await Promise.race([exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), 10_000))]);
    expect(stop, 'still running 10 s after SIGTERM').toEqual({ code: 0, signal: null });
  });
});
