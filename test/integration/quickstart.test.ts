/**
 * The README's quick start as a new user meets it: the gateway started as a
 * process with no credentials serves the README's example on the embedded
 * emulator; a half-given configuration stops it with one line.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';
import { freePort } from '../helpers/process.js';

function run(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'src/main.ts')], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

describe('npm start with no credentials', () => {
  let proc: ReturnType<typeof run>;
  let base: string;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    proc = run({ PORT: String(port) });
    const started = Date.now();
    while (!proc.out().includes('gateway listening')) {
      if (Date.now() - started > 20_000) throw new Error(`gateway did not start:\n${proc.out()}\n${proc.err()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => {
    proc.child.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
  });

  it('says in one log line that it serves the embedded emulator', () => {
    const lines = proc
      .out()
      .split('\n')
      .filter((l) => /emulator/i.test(l) && /demo/i.test(l));
    expect(lines).toHaveLength(1);
  });

  it("answers the README's example query with the README's answer", async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const body = /-d '(\{"query".*?\})'/.exec(readme)?.[1];
    const answer = /```json\n(.*?)\n```/s.exec(readme)?.[1];
    expect(body, 'README has a curl example').toBeTruthy();
    const res = await fetch(`${base}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(JSON.parse(answer!));
  });

  it('serves GraphiQL to a browser, with its assets inline', async () => {
    const res = await fetch(`${base}/graphql`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('DemoUsers');
    expect(html).not.toMatch(/<script[^>]+src="https?:/);
    expect(html).not.toMatch(/<link[^>]+href="https?:/);
  });
});

describe('a bad configuration', () => {
  it.each([
    [{ TIM_SDKAPPID: '1400000001' }, 'TIM_SECRET_KEY'],
    [{ TIM_SDKAPPID: 'nope', TIM_SECRET_KEY: 'k' }, 'TIM_SDKAPPID'],
    [{ TIM_SDKAPPID: '1400000001', TIM_SECRET_KEY: 'super-secret-key-value' }, 'JWT_SECRET'],
    // The embedded emulator would refuse it at start, in a line that did not name the variable.
    [{ TIM_ADMIN_IDENTIFIER: 'admin\u00e9' }, 'TIM_ADMIN_IDENTIFIER'],
    // Valid values that cannot be served: found only when listening, and said as plainly.
    [{ HOST: '203.0.113.7' }, 'HOST'],
    [{ PORT: 'busy' }, 'PORT'],
  ])('%j exits non-zero with one line naming %s', async (env: Record<string, string>, variable) => {
    let holder: Server | null = null;
    if (env.PORT === 'busy') {
      holder = createServer();
      await new Promise<void>((resolve) => holder!.listen(0, '127.0.0.1', resolve));
      env = { ...env, PORT: String((holder.address() as AddressInfo).port) };
    }
    const proc = run(env);
    if (holder) void proc.exited.then(() => holder!.close());
    const code = await proc.exited;
    expect(code).not.toBe(0);
    const lines = proc.err().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(variable);
    expect(proc.err() + proc.out()).not.toContain('super-secret-key-value');
  });
});
