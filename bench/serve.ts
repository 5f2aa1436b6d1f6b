/**
 * A serving process of the bench: the TIM emulator or one gateway, run from
 * the compiled build (dist/) as in production, apart from the load generator
 * so that autocannon never shares an event loop with what it measures. It runs
 * as plain JavaScript under plain node (processes.ts transpiles it), so the
 * gateway's RSS and CPU profile are its own, without a TypeScript loader's.
 *
 * The parent forks this file with an IPC channel, sends one StartMessage, gets
 * a Ready with the URL, then asks Questions (see protocol.ts) until 'stop'.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type * as EmulatorModule from '../src/emulator/index.js';
import type * as LoggerModule from '../src/logger.js';
import type * as ConfigModule from '../src/config.js';
import type * as RuntimeModule from '../src/runtime.js';
import type * as ServerModule from '../src/server.js';
import type { CommandCalls, MemorySummary, Question, Ready, Reply, StartMessage, UpstreamSummary } from './protocol.js';
import { seedAttributes, seedUsers } from './users.js';

/** The compiled module of `src/<path>.ts`; typed from the source, loaded from dist/. */
function compiled<M>(path: string): Promise<M> {
  return import(new URL(`${path}.js`, distUrl).href) as Promise<M>;
}

/** Where dist/ is: this file runs from a transpiled copy elsewhere (see processes.ts). */
let distUrl = '';

interface Served {
  url: string;
  answer(question: Question): Promise<unknown>;
}

async function startEmulator(start: Extract<StartMessage, { role: 'emulator' }>): Promise<Served> {
  const { TimEmulator, maxCallsInWindow } = await compiled<typeof EmulatorModule>('emulator/index');
  const emulator = await TimEmulator.start({
    sdkappid: start.sdkappid,
    secretKey: start.secretKey,
    adminIdentifier: 'administrator',
    port: 0,
    seed: seedUsers(),
    attributes: seedAttributes(),
    latencyMs: start.latencyMs,
    maxCallsPerSecond: start.maxCallsPerSecond,
  });
  return {
    url: emulator.url,
    async answer(q) {
      switch (q.ask) {
        case 'reset':
          emulator.resetCalls();
          return null;
        case 'upstream': {
          // Only calls made while the load ran count (not those of requests still in flight after it).
          const during = emulator.calls.filter((c) => c.at >= q.since && c.at <= q.until);
          const calls = during.filter((c) => c.command === 'im_get_tag');
          const byCommand: Record<string, CommandCalls> = {};
          for (const command of new Set(during.map((c) => c.command))) {
            const of = during.filter((c) => c.command === command);
            byCommand[command] = { calls: of.length, peakInOneSecond: maxCallsInWindow(of) };
          }
          const errors: Record<string, number> = {};
          for (const c of calls) if (c.errorCode !== 0) errors[c.errorCode] = (errors[c.errorCode] ?? 0) + 1;
          const summary: UpstreamSummary = {
            calls: calls.length,
            accounts: calls.reduce((n, c) => n + c.accounts.length, 0),
            peakInOneSecond: maxCallsInWindow(calls),
            errors,
            byCommand,
          };
          return summary;
        }
        case 'memory':
          return memory.summary();
        case 'departures':
          throw new Error('the emulator sees arrivals, not departures; ask a gateway');
        case 'stop':
          await emulator.close();
          return null;
      }
    },
  };
}

async function startGateway(start: Extract<StartMessage, { role: 'gateway' }>): Promise<Served> {
  const [{ loadConfig }, { createLogger }, server, pino] = await Promise.all([
    compiled<typeof ConfigModule>('config'),
    compiled<typeof LoggerModule>('logger'),
    compiled<typeof ServerModule>('server'),
    import('pino'),
  ]);
  // The heap set up as `npm start` sets it (its node flags came with the fork, bench/processes.ts's gatewayFlags);
  // a baseline build from before src/runtime.ts has none to set.
  const runtime = await compiled<typeof RuntimeModule>('runtime').catch(() => null);
  runtime?.tuneHeap();
  const config = loadConfig(start.env);
  const logger: Logger = createLogger(config.logLevel, {
    destination: pino.default.destination({ dest: start.logFile, sync: false, mkdir: true, append: false }),
  });
  const gateway = await server.startGateway(config, { logger, coalesce: start.coalesce });
  const ceiling = start.ceiling ? await startCeiling(gateway) : null;
  // When each call left, on the clock the emulator stamps arrivals with: comparing the two
  // tells bunching by the gateway's pacing from bunching on the way (event-loop lag, the network).
  let departures: number[] = [];
  gateway.client.onCall((call) => {
    if (call.command === 'im_get_tag') departures.push(performance.timeOrigin + performance.now() - call.durationMs);
  });
  return {
    url: ceiling?.url ?? gateway.url,
    async answer(q) {
      switch (q.ask) {
        case 'reset':
          memory.reset();
          departures = [];
          return null;
        case 'memory':
          return memory.summary(q.gc);
        case 'departures':
          return departures.filter((t) => t >= q.since && t <= q.until);
        case 'upstream':
          throw new Error('a gateway does not record upstream calls; ask the emulator');
        case 'stop': {
          // A request still waiting for the budget may hold the server open for its deadline; don't wait longer.
          const timeout = new Promise((resolve) => setTimeout(resolve, 5000).unref());
          await Promise.race([ceiling ? ceiling.close().then(() => gateway.close()) : gateway.close(), timeout]);
          logger.flush();
          return null;
        }
      }
    },
  };
}

/**
 * The ceiling: the gateway's own upstream layer (its lookup queue, budget and TIM client, as the
 * gateway built them) behind a bare node:http handler that answers a single-user lookup with no
 * GraphQL at all. Under the same load it reaches what the scheduler and the upstream's round trip
 * leave to any GraphQL layer over this upstream; the gateway's share of it is what GraphQL and the
 * gateway's checks cost. Anything but a POST (the bench's /readyz) goes to the gateway itself.
 */
async function startCeiling(gateway: ServerModule.Gateway): Promise<{ url: string; close(): Promise<void> }> {
  const { upstream } = gateway.services;
  const timeoutMs = gateway.config.requestTimeoutMs;
  const ceiling = createServer((req, res) => {
    if (req.method !== 'POST') return void gateway.server.emit('request', req, res);
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => lookUp(Buffer.concat(chunks).toString(), res).catch(() => res.destroy()));
  });
  async function lookUp(body: string, res: ServerResponse<IncomingMessage>) {
    const id = String((JSON.parse(body) as { variables?: { id?: unknown } }).variables?.id);
    const [tags] = await upstream.tags.get([id], Date.now() + timeoutMs);
    const answer =
      tags instanceof Error
        ? {
            errors: [
              {
                message: tags.message,
                extensions: { code: tags.name === 'RateLimitedError' ? 'RATE_LIMITED' : 'UPSTREAM' },
              },
            ],
          }
        : { data: { user: { id, tags } } };
    const text = JSON.stringify(answer);
    res.writeHead(200, {
      'content-type': 'application/graphql-response+json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }
  await new Promise<void>((resolve) => ceiling.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(ceiling.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => ceiling.close(() => resolve())),
  };
}

/** The highest RSS seen, sampled often enough to catch a queue's peak. */
const memory = (() => {
  let peak = process.memoryUsage.rss();
  let cpuAtReset = process.cpuUsage();
  setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 100).unref();
  return {
    reset: () => {
      peak = process.memoryUsage.rss();
      cpuAtReset = process.cpuUsage();
    },
    summary: (gc = false): MemorySummary => {
      if (gc) (globalThis as { gc?: () => void }).gc?.();
      const { rss, heapUsed } = process.memoryUsage();
      peak = Math.max(peak, rss);
      const cpu = process.cpuUsage(cpuAtReset);
      return { rss, peakRss: peak, heapUsed, cpuMs: (cpu.user + cpu.system) / 1000 };
    },
  };
})();

function send(message: Ready | Reply): void {
  process.send!(message);
}

if (!process.send) {
  console.error('bench/serve.ts is started by bench/run.ts over IPC, not by hand');
  process.exit(2);
}

// Orphaned (the bench died or was interrupted): nothing will ask for a stop, so go now.
process.once('disconnect', () => process.exit(0));

process.once('message', async (start: StartMessage) => {
  let served: Served;
  distUrl = start.distUrl;
  try {
    served = await (start.role === 'emulator' ? startEmulator(start) : startGateway(start));
  } catch (err) {
    console.error(`bench ${start.role} failed to start:`, err instanceof Error ? err.message : err);
    process.exit(1);
  }
  process.on('message', async (q: Question) => {
    try {
      send({ id: q.id, ok: true, value: await served.answer(q) });
    } catch (err) {
      send({ id: q.id, ok: false, error: err instanceof Error ? err.message : String(err) });
    }
    // Exit from here so that `--cpu-prof` writes its profile.
    if (q.ask === 'stop') setImmediate(() => process.exit(0));
  });
  send({ ready: true, url: served.url, pid: process.pid });
});
