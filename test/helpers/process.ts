/**
 * Real processes for the multi-process tests: gateways started the way users
 * start them (`node --import tsx src/main.ts` with env), and throwaway Redis
 * servers a test may stop and start again without touching the machine's own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { LOG_DIR, ROOT } from './paths.js';

/** A port nothing listens on right now (the OS picks it; a rare race with another process remains). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface GatewayProcess {
  url: string;
  pid: number;
  /** Every line the process wrote to stdout and stderr so far (also kept in test/artifacts/logs). */
  output(): string;
  /** SIGTERM, then SIGKILL if it has not stopped within a few seconds. */
  stop(): Promise<void>;
}

/** The variables a child needs from this process; the developer's own TIM_* or REDIS_URL never leak in. */
function baseEnv(): Record<string, string> {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG'];
  return Object.fromEntries(keep.flatMap((k) => (process.env[k] ? [[k, process.env[k]!]] : [])));
}

/** Starts one gateway process with `env` on a free port and resolves once `/readyz` says it can serve. */
export async function spawnGateway(env: Record<string, string>, readyWithinMs = 30_000): Promise<GatewayProcess> {
  // A port picked free may be taken before the child binds it: then try another.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(await freePort(), env, readyWithinMs);
    } catch (err) {
      if (attempt === 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
    }
  }
}

async function startOn(port: number, env: Record<string, string>, readyWithinMs: number): Promise<GatewayProcess> {
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { ...baseEnv(), LOG_LEVEL: 'info', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  mkdirSync(LOG_DIR, { recursive: true });
  const log = createWriteStream(join(LOG_DIR, `process-${randomUUID()}.log`));
  log.on('error', () => {}); // losing the copy on disk must not fail the test
  let output = '';
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
    log.write(chunk);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => log.end());

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };

  const until = Date.now() + readyWithinMs;
  while (Date.now() < until) {
    if (child.exitCode !== null)
      throw new Error(`gateway process exited (${child.exitCode}) before it was ready:\n${output}`);
    try {
      const res = await fetch(`${url}/readyz`);
      await res.arrayBuffer();
      if (res.ok) return { url, pid: child.pid!, output: () => output, stop };
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  await stop();
  throw new Error(`gateway process was not ready within ${readyWithinMs} ms:\n${output}`);
}

/**
 * Starts `count` gateway processes with the same environment, side by side. Either all start, or the ones that
 * did are stopped again and the first failure is thrown: nothing outlives a fleet that did not start.
 */
export async function spawnFleet(env: Record<string, string>, count: number): Promise<GatewayProcess[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, () => spawnGateway(env)));
  const up = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(up.map((g) => g.stop()));
    throw failed.reason;
  }
  return up;
}

export interface RedisProcess {
  port: number;
  url: string;
  /** Kills the server at once (SIGKILL): to its clients, Redis is simply gone. */
  kill(): Promise<void>;
  /** Starts the server again on the same port: empty, or with its data when it persists. */
  restart(): Promise<void>;
  /** Kills it for good and removes its files. */
  stop(): Promise<void>;
}

/**
 * A throwaway `redis-server` on a free port, for tests that stop Redis. With
 * `persist`, it keeps an append-only file in a fresh directory, so a restart
 * brings its data back (a Redis that was only out of reach for a while).
 */
export async function startRedisServer(opts: { persist?: boolean } = {}): Promise<RedisProcess> {
  const port = await freePort();
  const dir = opts.persist ? mkdtempSync(join(tmpdir(), 'tim-tags-redis-')) : null;
  const persistence = dir ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] : ['--appendonly', 'no'];
  let child: ChildProcess | null = null;
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence], {
      stdio: 'ignore',
    });
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      if (await answersPing(port)) return;
      await sleep(50);
    }
    throw new Error(`redis-server on port ${port} did not answer within 10 s`);
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    c.kill('SIGKILL');
    await exited;
  };
  const stop = async () => {
    await kill();
    if (dir) rmSync(dir, { recursive: true, force: true });
  };
  await start();
  return { port, url: `redis://127.0.0.1:${port}`, kill, restart: start, stop };
}

async function answersPing(port: number): Promise<boolean> {
  const probe = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Deletes every key matching `pattern` (a test's own prefix) from the Redis at `url`. */
export async function dropRedisKeys(url: string, pattern: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** An sdkappid no other test uses, so tests sharing the machine's Redis never share keys. */
export function uniqueSdkappid(): number {
  return 1_500_000_000 + Math.floor(Math.random() * 400_000_000);
}
