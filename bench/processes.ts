/** The parent's side of bench/serve.ts: forks a serving process and asks it questions over IPC. */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import type {
  GatewayStart,
  EmulatorStart,
  MemorySummary,
  Question,
  Ready,
  Reply,
  UpstreamSummary,
} from './protocol.js';

const DIST_URL = new URL('../dist/', import.meta.url).href;
/** Inside node_modules: ignored by git, and bare imports (pino) resolve from the project. */
const SERVE_BUILD = new URL('../node_modules/.cache/tim-tags-bench/', import.meta.url);
/** serve.ts and what it imports at run time (protocol.ts is types only). */
const SERVE_SOURCES = ['serve', 'users'];

let serveBuild: Promise<string> | null = null;

/**
 * serve.ts as JavaScript, transpiled once per run: the serving processes then
 * run under plain node, as `node dist/main.js` does, without tsx's loader
 * thread (about 80 MB of RSS) or its source-mapped stack traces.
 */
function serveScript(): Promise<string> {
  return (serveBuild ??= (async () => {
    await mkdir(SERVE_BUILD, { recursive: true });
    await writeFile(new URL('package.json', SERVE_BUILD), '{ "type": "module" }\n');
    for (const name of SERVE_SOURCES) {
      const source = await readFile(new URL(`./${name}.ts`, import.meta.url), 'utf8');
      const { outputText } = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
        fileName: `${name}.ts`,
      });
      await writeFile(new URL(`${name}.js`, SERVE_BUILD), outputText);
    }
    return fileURLToPath(new URL('serve.js', SERVE_BUILD));
  })());
}

type Ask = Question extends infer Q ? (Q extends { id: number } ? Omit<Q, 'id'> : never) : never;

/**
 * The node flags the gateway built at `distUrl` is started with, as its scripts start it (src/runtime.ts's
 * NODE_FLAGS; none for a build from before it had them).
 */
export async function gatewayFlags(distUrl = DIST_URL): Promise<string[]> {
  const runtime = (await import(new URL('runtime.js', distUrl).href).catch(() => null)) as {
    NODE_FLAGS?: readonly string[];
  } | null;
  return [...(runtime?.NODE_FLAGS ?? [])];
}

export class ServingProcess {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly pid: number,
  ) {
    child.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.ok) waiter?.resolve(reply.value);
      else waiter?.reject(new Error(reply.error));
    });
    child.on('exit', (code) => {
      for (const waiter of this.pending.values())
        waiter.reject(new Error(`serving process ${this.pid} exited with ${code}`));
      this.pending.clear();
    });
  }

  /**
   * Forks bench/serve.ts with extra node flags (e.g. `--cpu-prof`) and waits until it listens;
   * the gateway is loaded from `distUrl` (this checkout's dist/ unless a baseline's is given).
   */
  static async start(
    start: EmulatorStart | GatewayStart,
    nodeFlags: string[] = [],
    distUrl = DIST_URL,
  ): Promise<ServingProcess> {
    const child = fork(await serveScript(), [], {
      execArgv: nodeFlags,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const ready = await new Promise<Ready>((resolve, reject) => {
      child.once('message', (m: Ready) => resolve(m));
      child.once('exit', (code) => reject(new Error(`bench ${start.role} exited with ${code} before it listened`)));
      child.send({ ...start, distUrl });
    });
    return new ServingProcess(child, ready.url, ready.pid);
  }

  ask(question: Extract<Ask, { ask: 'upstream' }>): Promise<UpstreamSummary>;
  ask(question: Extract<Ask, { ask: 'memory' }>): Promise<MemorySummary>;
  ask(question: Extract<Ask, { ask: 'departures' }>): Promise<number[]>;
  ask(question: Extract<Ask, { ask: 'reset' | 'stop' }>): Promise<null>;
  ask(question: Ask): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.send({ ...question, id });
    });
  }

  /** Asks it to stop, and waits for the process to end. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    await this.ask({ ask: 'stop' }).catch(() => {});
    await exited;
  }
}
