/**
 * The bench's other servers, measured under the same load in the same run as
 * the gateway:
 * - the reference: `../shared/reference/naive.mjs` (plain graphql-yoga + one
 *   DataLoader per request), copied to a temporary folder and installed there
 *   with `npm ci`, once per lock file (kept in os.tmpdir() across runs);
 * - a baseline: this gateway as built at a git revision (`--baseline <rev>`),
 *   exported with `git archive`, installed and built once per commit;
 * - the floor: bench/floor.mjs, a bare node:http server (what the machine leaves to any server).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, cp, mkdir, readFile, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { MemorySummary } from './protocol.js';

const run = promisify(execFile);
/** Marks a finished install or build, so that an interrupted one is redone. */
const READY = '.bench-ready';

/**
 * Where the reference lives: BENCH_REFERENCE_DIR, else `../shared/reference` beside the
 * checkout, or beside the main checkout when this one is a git worktree elsewhere.
 */
export function referenceSource(repoRoot: string): string {
  if (process.env.BENCH_REFERENCE_DIR) return resolve(process.env.BENCH_REFERENCE_DIR);
  const beside = resolve(repoRoot, '../shared/reference');
  if (existsSync(beside)) return beside;
  try {
    const common = execFileSync('git', ['rev-parse', '--path-format=absolute', '--git-common-dir'], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    const main = resolve(dirname(common.trim()), '../shared/reference');
    if (existsSync(main)) return main;
  } catch {
    // Not a git checkout: say where it was looked for.
  }
  throw new Error(`the reference gateway is not at ${beside}; set BENCH_REFERENCE_DIR`);
}

/** A copy of the reference with its packages installed; returns the folder holding naive.mjs. */
export async function installReference(source: string): Promise<string> {
  const key = await hashOf([join(source, 'package.json'), join(source, 'package-lock.json')]);
  const dir = join(tmpdir(), `tim-tags-reference-${key}`);
  if (!existsSync(join(dir, READY))) {
    const staging = `${dir}.${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await cp(source, staging, { recursive: true });
    await makeWritable(staging);
    console.log(`installing the reference (npm ci) in ${dir}`);
    await run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: staging });
    await writeFile(join(staging, READY), '');
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
  }
  // The server itself is copied every run, so an edit to it is never hidden by the cached install.
  await cp(join(source, 'naive.mjs'), join(dir, 'naive.mjs'), { force: true });
  return dir;
}

/**
 * The gateway at `rev`, built: returns its dist/ as a file URL ending in `/`
 * (serve.ts loads the gateway from there) and the short commit. When its lock
 * file is the same as this checkout's, it shares this checkout's node_modules.
 */
export async function buildBaseline(repoRoot: string, rev: string): Promise<{ distUrl: string; commit: string }> {
  const { stdout } = await run('git', ['rev-parse', '--verify', `${rev}^{commit}`], { cwd: repoRoot });
  const commit = stdout.trim();
  const dir = join(tmpdir(), `tim-tags-baseline-${commit.slice(0, 12)}`);
  if (!existsSync(join(dir, READY))) {
    const staging = `${dir}.${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    console.log(`building the baseline ${commit.slice(0, 12)} in ${dir}`);
    await run('sh', ['-c', `git archive --format=tar ${commit} | tar -x -C '${staging}'`], { cwd: repoRoot });
    const sameLock =
      (await hashOf([join(staging, 'package-lock.json')])) === (await hashOf([join(repoRoot, 'package-lock.json')]));
    if (sameLock) await symlink(join(repoRoot, 'node_modules'), join(staging, 'node_modules'), 'dir');
    else await run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: staging });
    await run(process.execPath, [join(staging, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
      cwd: staging,
    });
    await writeFile(join(staging, READY), '');
    await rm(dir, { recursive: true, force: true });
    await rename(staging, dir);
  }
  return { distUrl: pathToFileURL(join(dir, 'dist/')).href, commit: commit.slice(0, 12) };
}

/** A plain server script of the bench's (naive.mjs, floor.mjs) in its own process, on a free port, with the gateway's variable names. */
export class ScriptProcess {
  private peak = 0;
  private readonly sampler: NodeJS.Timeout;

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {
    this.peak = rssOf(child.pid!);
    this.sampler = setInterval(() => (this.peak = Math.max(this.peak, rssOf(child.pid!))), 100);
  }

  get pid(): number {
    return this.child.pid!;
  }

  static async start(dir: string, env: Record<string, string>, script = 'naive.mjs'): Promise<ScriptProcess> {
    const port = await freePort();
    const child = spawn(process.execPath, [script], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', ...env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before it listened`)));
      child.stdout!.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('listening')) resolve();
      });
    });
    child.stdout!.resume();
    return new ScriptProcess(child, `http://127.0.0.1:${port}`);
  }

  private cpuAtReset = 0;

  reset(): void {
    this.peak = rssOf(this.pid);
    this.cpuAtReset = cpuMsOf(this.pid);
  }

  memory(): MemorySummary {
    const rss = rssOf(this.pid);
    this.peak = Math.max(this.peak, rss);
    return { rss, peakRss: this.peak, heapUsed: NaN, cpuMs: cpuMsOf(this.pid) - this.cpuAtReset };
  }

  async stop(): Promise<void> {
    clearInterval(this.sampler);
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/** A process's resident set size in bytes, from /proc (0 once it is gone). Synchronous: a tiny read every 100 ms. */
function rssOf(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) a process has used, in ms, from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuMsOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces: utime is the 12th, stime the 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function hashOf(files: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const f of files) hash.update(await readFile(f));
  return hash.digest('hex').slice(0, 16);
}

/** `cp` keeps the read-only modes of ../shared; npm needs to write into the copy. */
async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await makeWritable(path);
    else await chmod(path, 0o644);
  }
}
