/**
 * Issue 10: the production install from a clean copy of the tracked files:
 * `npm ci && npm run build`, then `npm ci --omit=dev && npm run start:prod`
 * serves GraphQL with no dev dependency on disk, and stops on SIGTERM.
 *
 * Both installs are real `npm ci` runs from npm's cache (`--prefer-offline`):
 * about 5 s each on a warm cache (the whole file about 25 s, the build
 * included), so no shortcut is needed.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/paths.js';
import { freePort } from '../helpers/process.js';

let dir: string;
/** The running node's own npm first on PATH, so the copy is installed and run by the Node under test. */
const env = {
  PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
  HOME: process.env.HOME ?? '',
  npm_config_update_notifier: 'false',
};
const npm = (...args: string[]) =>
  execFileSync('npm', [...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 }).toString();
const INSTALL = ['ci', '--prefer-offline', '--no-audit', '--no-fund'];

/** Every file git tracks, as it is in the working tree (what a checkout of this commit would hold). */
function copyTrackedFiles(to: string): void {
  const files = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT }).toString().split('\0').filter(Boolean);
  for (const file of files) {
    const from = join(ROOT, file);
    if (!existsSync(from)) continue; // deleted in the working tree, not yet committed
    mkdirSync(dirname(join(to, file)), { recursive: true });
    writeFileSync(join(to, file), readFileSync(from));
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tim-tags-prod-'));
  copyTrackedFiles(dir);
  npm(...INSTALL);
  npm('run', 'build');
  npm(...INSTALL, '--omit=dev');
}, 240_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('production install', () => {
  it('leaves no dev dependency installed, and the build in dist/', () => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    };
    const dev = Object.keys(pkg.devDependencies);
    expect(dev).toContain('typescript');
    for (const name of dev) expect(existsSync(join(dir, 'node_modules', name)), name).toBe(false);
    expect(existsSync(join(dir, 'dist/main.js'))).toBe(true);
  });

  it('starts with node dist/main.js, answers GraphQL and health checks, and stops on SIGTERM with exit 0', async () => {
    const port = await freePort();
    // `npm run` would have to pass SIGTERM on; what a container runs as PID 1 is node itself, so test that too.
    const child = spawn(process.execPath, ['dist/main.js'], {
      cwd: dir,
      env: { ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = collect(child);
    const base = `http://127.0.0.1:${port}`;
    await untilListening(output, child);
    await expectServes(base);
    const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(output()).toContain('"msg":"stopped"');
  });

  it('starts the same through npm run start:prod', async () => {
    const port = await freePort();
    // Its own process group: npm runs the script through a shell, and the gateway (node) must stop with it.
    const child = spawn('npm', ['run', '--silent', 'start:prod'], {
      cwd: dir,
      env: { ...env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const output = collect(child);
    const base = `http://127.0.0.1:${port}`;
    try {
      await untilListening(output, child);
      await expectServes(base);
    } finally {
      const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      // As a container runtime or a process manager stops it: SIGTERM to the whole group.
      process.kill(-child.pid!, 'SIGTERM');
      await exit;
    }
    // Nothing is left listening once npm is gone (a gateway orphaned by npm would still answer).
    expect(await stopsAnswering(base, 10_000)).toBe(true);
  });
});

/** Whether the URL refuses connections within `withinMs`. */
async function stopsAnswering(base: string, withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    try {
      await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) });
    } catch {
      return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

function collect(child: ChildProcess): () => string {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return () => out;
}

async function untilListening(output: () => string, child: ChildProcess): Promise<void> {
  const started = Date.now();
  while (!output().includes('gateway listening')) {
    if (child.exitCode !== null || Date.now() - started > 20_000)
      throw new Error(`the production build did not start:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function expectServes(base: string): Promise<void> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: '{ users(ids: ["alice", "frank"]) { id tags } }' }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { data: { users: Array<{ id: string; tags: string[] }> } };
  expect(body.data.users.map((u) => u.id)).toEqual(['alice', 'frank']);
  expect(body.data.users[0]!.tags).toContain('vip');
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  expect((await fetch(`${base}/readyz`)).status).toBe(200);
  expect(await (await fetch(`${base}/metrics`)).text()).toContain('graphql_envelop_phase_execute');
}
