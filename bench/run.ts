/**
 * `npm run bench`: autocannon against real gateways over a real emulator
 * (20 ms upstream latency, the real 100 calls/s limit, or none at all for the
 * `free-*` scenarios), each in its own process; prints a table and writes it
 * to bench/results/ (latest.md, latest.json and a timestamped copy of each).
 *
 *   npm run bench -- [--only free-hundred,single] [--duration 8] [--warmup 2]
 *                    [--request-timeout 2000] [--redis-url redis://127.0.0.1:6379] [--profile]
 *                    [--baseline <git rev>] [--rounds 3] [--soak [--soak-scenario single] [--soak-duration 300]]
 *
 * The Redis scenarios (issue 5) are skipped, with a note, when Redis does not answer.
 *
 * Scenarios marked `reference` also run on ../shared/reference/naive.mjs
 * (BENCH_REFERENCE_DIR overrides where), installed in a temporary folder once
 * per lock file. `--baseline <rev>` builds the gateway at that revision (once
 * per commit, in a temporary folder) and runs the scenarios marked `baseline`
 * on it too. A scenario with the reference or a baseline runs all its rows in
 * turn `--rounds` times (3) and reports each row's median round, with every
 * round's ok req/s beside it: on a shared machine one row's 8 s can fall in a
 * slow moment, and a ratio of two single rows moved by a tenth. `--soak` runs one scenario for five minutes and compares heap and
 * RSS at its start and end; it runs the other scenarios only when `--only`
 * names them.
 *
 * `--profile` runs every gateway under `node --cpu-prof` and adds where its
 * time went to the report (profiles in bench/results/profiles/).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { cpus, loadavg, setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runLoad } from './load.js';
import { gatewayFlags, ServingProcess } from './processes.js';
import { describeProfile, summarizeProfile } from './profile.js';
import type { MemorySummary } from './protocol.js';
import { buildBaseline, installReference, referenceSource, ScriptProcess } from './reference.js';
import { mostInWindow } from '../src/emulator/index.js';
import {
  checks,
  comparisons,
  describeSoak,
  medianRound,
  markdown,
  ratios,
  isPlainServer,
  soakFlat,
  table,
  type Row,
  type Server,
  type Setting,
  type Skipped,
  type SoakResult,
} from './report.js';
import { SCENARIOS, UNLIMITED_QPS, type Mode, type Scenario } from './scenarios.js';
import { USER_COUNT } from './users.js';

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const UPSTREAM_LATENCY_MS = 20;
const UPSTREAM_MAX_CALLS_PER_SECOND = 100;
/** The emulator's limit for "no upstream limit": more calls than any run can make in a second. */
const UNLIMITED_CALLS_PER_SECOND = 1_000_000_000;
/** Not the default demo app's id, so a shared Redis keeps the bench's budget apart from other users'. */
const SDKAPPID = 1400099999;
/** Connections of a scenario's fixed-rate background load: enough that its rate never waits on a slow answer. */
const BACKGROUND_CONNECTIONS = 10;

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    duration: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
    'request-timeout': { type: 'string', default: '2000' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    profile: { type: 'boolean', default: false },
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    soak: { type: 'boolean', default: false },
    'soak-scenario': { type: 'string', default: 'single' },
    'soak-duration': { type: 'string', default: '300' },
  },
});
const durationS = Number(args.duration);
const rounds = Math.max(1, Math.floor(Number(args.rounds)) || 1);
const warmupS = Number(args.warmup);
const requestTimeoutMs = args['request-timeout'];
const redisUrl = args['redis-url'];
const only = args.only?.split(',').map((k) => k.trim());
const selected = only ? SCENARIOS.filter((s) => only.includes(s.key)) : args.soak ? [] : SCENARIOS;
const soakScenario = args.soak ? SCENARIOS.find((s) => s.key === args['soak-scenario']) : undefined;
if ((only && selected.length === 0) || (args.soak && !soakScenario)) {
  console.error(`no such scenario; the keys are ${SCENARIOS.map((s) => s.key).join(', ')}`);
  process.exit(2);
}
const soakDurationS = Number(args['soak-duration']);

const startedAt = new Date();
const loadAtStart = loadavg();
const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
const profileDir = `${RESULTS}profiles/${stamp}`;
const secretKey = randomBytes(24).toString('hex');

// Everything the run needs is built before any load, so no build shares the CPUs with a measure.
const referenceDir = selected.some((s) => s.reference) ? await installReference(referenceSource(REPO_ROOT)) : null;
const baseline = args.baseline ? await buildBaseline(REPO_ROOT, args.baseline) : null;

const emulators = new Map<'limited' | 'unlimited', ServingProcess>();
let emulatorPriority = 'no emulator started';
const redisProblem = selected.some((s) => s.needsRedis) ? await whyNoRedis() : null;

const rows: Row[] = [];
const skipped: Skipped[] = [];
const profiles: string[] = [];
const soaks: SoakResult[] = [];
try {
  for (const scenario of selected) {
    if (scenario.needsRedis && redisProblem) {
      skipped.push({ key: scenario.key, scenario: scenario.name, why: redisProblem });
      console.log(`skipped: ${scenario.name}: ${redisProblem}`);
      continue;
    }
    const servers: Array<[Mode, Server]> = scenario.modes.map((mode) => [mode, 'gateway']);
    if (scenario.reference && referenceDir) servers.push(['on', 'reference']);
    if (scenario.baseline && baseline) servers.push(['on', `baseline ${baseline.commit}`]);
    if (scenario.floor) servers.push(['on', 'floor']);
    if (scenario.ceiling) servers.push(['on', 'ceiling']);
    // A scenario measured against another server runs its rows in turn, `rounds` times over, and keeps
    // each row's median round: the ratio then compares the same moments of a machine shared with others.
    const times = servers.length > scenario.modes.length ? rounds : 1;
    const measured = servers.map((): Row[] => []);
    for (let round = 1; round <= times; round++) {
      for (const [i, [mode, server]] of servers.entries()) {
        console.log(
          `running: ${scenario.name}, ${server}${isPlainServer(server) ? '' : `, coalescing ${mode}`} ` +
            `(${warmupS} s warm-up, ${durationS} s measure${times > 1 ? `, round ${round} of ${times}` : ''})`,
        );
        measured[i]!.push(await measure(scenario, mode, server));
        // Let the emulator's sliding window empty, so one run's calls never count against the next.
        await sleep(1100);
      }
    }
    rows.push(...measured.map(medianRound));
  }
  if (soakScenario) soaks.push(await soak(soakScenario));
} finally {
  await Promise.all([...emulators.values()].map((e) => e.stop()));
}

const settings: Setting[] = [
  {
    name: 'machine',
    value: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')} at start, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at end, Node ${process.version}`,
  },
  {
    name: 'upstream',
    value: `the TIM emulator in its own process, ${UPSTREAM_LATENCY_MS} ms latency, ${UPSTREAM_MAX_CALLS_PER_SECOND} calls/s (60007 beyond), ${USER_COUNT.toLocaleString('en-US')} seeded users`,
  },
  { name: 'emulator priority', value: emulatorPriority },
  {
    name: 'gateway',
    value:
      `dist/ build, one process per gateway; TIM_MAX_QPS=100 (${UNLIMITED_QPS} with no upstream limit), ` +
      `REQUEST_TIMEOUT_MS=${requestTimeoutMs}, LOG_LEVEL=warn`,
  },
  ...(referenceDir
    ? [{ name: 'reference', value: `naive.mjs from ${referenceSource(REPO_ROOT)}, installed in ${referenceDir}` }]
    : []),
  ...(baseline ? [{ name: 'baseline', value: `the gateway at ${baseline.commit} (--baseline ${args.baseline})` }] : []),
  {
    name: 'load',
    value:
      `autocannon in the parent process, ${warmupS} s warm-up then ${durationS} s measured per row; ` +
      `rows compared with the reference or a baseline run in turn ${rounds} times, the median round kept`,
  },
  ...[...new Set(rows.map((r) => r.budget))].map((b) => ({ name: 'rate budget (/readyz)', value: b })),
];
const report = {
  startedAt,
  settings,
  rows,
  skipped,
  checks: [
    ...checks(rows),
    ...soaks.map((s) => ({ target: `soak: heap and RSS within 10%`, measured: describeSoak(s), met: soakFlat(s) })),
  ],
  ratios: ratios(rows),
  comparisons: comparisons(rows),
  soak: soaks,
  profiles,
};
const text = markdown(report);
console.log(`\n${table(rows)}\n`);
for (const line of [...report.comparisons, ...report.ratios]) console.log(line);
for (const c of report.checks) console.log(`${c.met ? 'MET   ' : 'MISSED'} ${c.target}: ${c.measured}`);
for (const s of skipped) console.log(`SKIPPED ${s.scenario}: ${s.why}`);

await mkdir(RESULTS, { recursive: true });
const json = `${JSON.stringify(report, null, 2)}\n`;
await Promise.all([
  writeFile(`${RESULTS}latest.md`, text),
  writeFile(`${RESULTS}latest.json`, json),
  writeFile(`${RESULTS}${stamp}.md`, text),
  writeFile(`${RESULTS}${stamp}.json`, json),
]);
console.log(`\nwritten: bench/results/latest.md, bench/results/${stamp}.md (and .json)`);

/** The emulator for a scenario's upstream, started on first use. */
async function emulatorFor(upstream: 'limited' | 'unlimited'): Promise<ServingProcess> {
  let emulator = emulators.get(upstream);
  if (!emulator) {
    emulator = await ServingProcess.start({
      role: 'emulator',
      sdkappid: SDKAPPID,
      secretKey,
      latencyMs: UPSTREAM_LATENCY_MS,
      maxCallsPerSecond: upstream === 'limited' ? UPSTREAM_MAX_CALLS_PER_SECOND : UNLIMITED_CALLS_PER_SECOND,
    });
    emulators.set(upstream, emulator);
    // The emulator stands in for a remote service with CPUs of its own: when it shares 2 cores with the
    // gateway and the load, a starved event loop stamps calls late and in bunches, and it would count
    // (and refuse) calls that left the gateway evenly paced. A higher priority keeps its clock honest.
    emulatorPriority = raisePriority(emulator.pid, -10);
  }
  return emulator;
}

/** What a row measures of the processes serving it. */
interface Served {
  urls: string[];
  reset(): Promise<unknown>;
  memory(gc?: boolean): Promise<MemorySummary[]>;
  /** When each gateway's upstream calls left; null when the server cannot tell (the reference). */
  departures(since: number, until: number): Promise<number[] | null>;
  stop(): Promise<void>;
}

/** Fresh servers for one row: the gateways (this build's or the baseline's), or the reference. */
async function serve(
  scenario: Scenario,
  mode: Mode,
  server: Server,
  emulator: ServingProcess,
  label: string,
  nodeFlags: string[],
): Promise<Served> {
  if (isPlainServer(server)) {
    const env = {
      TIM_SDKAPPID: String(SDKAPPID),
      TIM_SECRET_KEY: secretKey,
      TIM_ADMIN_IDENTIFIER: 'administrator',
      TIM_BASE_URL: emulator.url,
    };
    const plain =
      server === 'reference'
        ? await ScriptProcess.start(referenceDir!, env)
        : await ScriptProcess.start(BENCH_DIR, env, 'floor.mjs');
    return {
      urls: [plain.url],
      reset: async () => plain.reset(),
      memory: async () => [plain.memory()],
      departures: async () => null,
      stop: () => plain.stop(),
    };
  }
  const env: Record<string, string> = {
    PORT: '0',
    HOST: '127.0.0.1',
    TIM_SDKAPPID: String(SDKAPPID),
    TIM_SECRET_KEY: secretKey,
    TIM_BASE_URL: emulator.url,
    AUTH_MODE: 'none',
    GRAPHIQL: 'false',
    LOG_LEVEL: 'warn',
    REQUEST_TIMEOUT_MS: requestTimeoutMs,
    ...(scenario.needsRedis ? { REDIS_URL: redisUrl } : {}),
    ...scenario.env,
  };
  const distUrl = server === 'gateway' || server === 'ceiling' ? undefined : baseline!.distUrl;
  // Each gateway starts as its own scripts start it (this build's and a baseline's may differ).
  const flags = [...(await gatewayFlags(distUrl)), ...nodeFlags];
  const gateways = await Promise.all(
    Array.from({ length: scenario.gateways }, (_, i) =>
      ServingProcess.start(
        {
          role: 'gateway',
          env,
          coalesce: mode === 'on',
          logFile: `${RESULTS}logs/${label}-${i + 1}.log`,
          ceiling: server === 'ceiling',
        },
        args.profile ? [...flags, '--cpu-prof', `--cpu-prof-dir=${profileDir}/${label}-${i + 1}`] : flags,
        distUrl,
      ),
    ),
  );
  return {
    urls: gateways.map((g) => g.url),
    reset: () => Promise.all(gateways.map((g) => g.ask({ ask: 'reset' }))),
    memory: (gc) => Promise.all(gateways.map((g) => g.ask({ ask: 'memory', gc }))),
    departures: async (since, until) =>
      (await Promise.all(gateways.map((g) => g.ask({ ask: 'departures', since, until })))).flat(),
    stop: async () => {
      await Promise.all(gateways.map((g) => g.stop()));
      if (!args.profile) return;
      for (let i = 1; i <= gateways.length; i++) {
        const file = await mainThreadProfile(`${profileDir}/${label}-${i}`);
        if (file) profiles.push(describeProfile(`${label}, gateway ${i}`, await summarizeProfile(file)));
      }
    },
  };
}

/** One row: fresh servers, a warm-up, then the measured load and what the upstream and the servers saw of it. */
async function measure(scenario: Scenario, mode: Mode, server: Server): Promise<Row> {
  const label = `${scenario.key}-${server === 'gateway' ? mode : server.replace(' ', '-')}`;
  const emulator = await emulatorFor(scenario.upstream ?? 'limited');
  const served = await serve(scenario, mode, server, emulator, label, []);
  try {
    const urls = served.urls;
    const spec = {
      urls,
      connections: scenario.connections,
      body: scenario.body,
      varies: scenario.varies,
      headers: scenario.headers,
    };
    const budget = isPlainServer(server) ? `none (the ${server} has no budget)` : await budgetOf(urls[0]!);
    if (warmupS > 0) await runLoad({ ...spec, durationS: warmupS });
    await Promise.all([emulator.ask({ ask: 'reset' }), served.reset()]);
    // A background load (its requests are not counted in the row) runs beside the measured one, started together.
    const background = scenario.background;
    const [load, beside] = await Promise.all([
      runLoad({ ...spec, durationS }),
      background
        ? runLoad({
            urls,
            connections: BACKGROUND_CONNECTIONS,
            durationS,
            body: background.body,
            varies: true,
            requestsPerSecond: background.requestsPerSecond,
          })
        : null,
    ]);
    const upstream = await emulator.ask({ ask: 'upstream', since: load.startedAt, until: load.finishedAt });
    const memory = await served.memory();
    const departures = await served.departures(load.startedAt, load.finishedAt);
    const errors = { ...load.errors };
    for (const [code, n] of Object.entries(upstream.errors)) errors[`TIM ${code}`] = n;
    const perS = (n: number) => n / load.durationS;
    return {
      key: scenario.key,
      scenario: scenario.name,
      server,
      mode,
      limited: (scenario.upstream ?? 'limited') === 'limited',
      gateways: urls.length,
      durationS: load.durationS,
      reqPerS: perS(load.responses),
      okReqPerS: perS(load.okResponses),
      okLookupsPerS: perS(load.okLookups),
      okBothLookupsPerS: perS(load.okBothLookups),
      p50Ms: load.p50Ms,
      p99Ms: load.p99Ms,
      upstreamCallsPerS: perS(upstream.calls),
      accountsPerCall: upstream.calls > 0 ? upstream.accounts / upstream.calls : NaN,
      peakCallsInOneSecond: upstream.peakInOneSecond,
      peakDeparturesInOneSecond: departures ? mostInWindow(departures) : NaN,
      byCommand: Object.fromEntries(
        Object.entries(upstream.byCommand).map(([command, c]) => [
          command,
          { callsPerS: perS(c.calls), peakInOneSecond: c.peakInOneSecond },
        ]),
      ),
      ...(beside
        ? {
            background: {
              reqPerS: beside.responses / beside.durationS,
              okReqPerS: beside.okResponses / beside.durationS,
              errors: beside.errors,
            },
          }
        : {}),
      errors,
      rssMb: memory.map((m) => m.peakRss / 2 ** 20),
      cpuUsPerReq: (memory.reduce((n, m) => n + m.cpuMs, 0) * 1000) / Math.max(1, load.responses),
      budget,
    };
  } finally {
    await served.stop();
  }
}

/**
 * One gateway under one scenario's load for `--soak-duration` seconds: heap and RSS after a
 * long warm-up (the heap grows to its working size first) and at the end, each after a full GC.
 */
async function soak(scenario: Scenario): Promise<SoakResult> {
  const emulator = await emulatorFor(scenario.upstream ?? 'limited');
  const served = await serve(scenario, scenario.modes[0]!, 'gateway', emulator, `${scenario.key}-soak`, [
    '--expose-gc',
  ]);
  try {
    const spec = {
      urls: served.urls,
      connections: scenario.connections,
      body: scenario.body,
      varies: scenario.varies,
      headers: scenario.headers,
    };
    const warm = Math.max(warmupS, 30);
    console.log(`soak: ${scenario.name} (${warm} s warm-up, ${soakDurationS} s measure)`);
    await runLoad({ ...spec, durationS: warm });
    const mb = (m: MemorySummary[]) => ({ rssMb: m[0]!.rss / 2 ** 20, heapMb: m[0]!.heapUsed / 2 ** 20 });
    // The load generator stops without waiting for the answers, so requests are still in flight when it returns
    // (a heap snapshot of a 400-connection soak's end held 96 of them, about 2 MB). Each measure waits until
    // every one has met its deadline, so the two compare the gateway at rest.
    const atRest = async () => {
      await sleep(Number(requestTimeoutMs) + 500);
      return mb(await served.memory(true));
    };
    const start = await atRest();
    const load = await runLoad({ ...spec, durationS: soakDurationS });
    const end = await atRest();
    return {
      scenario: scenario.name,
      durationS: load.durationS,
      okReqPerS: load.okResponses / load.durationS,
      start,
      end,
    };
  } finally {
    await served.stop();
  }
}

/** The main thread's profile in `dir`: the largest file (the loader thread's is small). */
async function mainThreadProfile(dir: string): Promise<string | null> {
  if (!existsSync(dir)) return null;
  const files = await Promise.all(
    (await readdir(dir))
      .filter((f) => f.endsWith('.cpuprofile'))
      .map(async (f) => ({ f, size: (await stat(`${dir}/${f}`)).size })),
  );
  const largest = files.sort((a, b) => b.size - a.size)[0];
  return largest ? `${dir}/${largest.f}` : null;
}

/** What the gateway's /readyz says about its rate budget. */
async function budgetOf(url: string): Promise<string> {
  try {
    const body = (await (await fetch(`${url}/readyz`)).json()) as { budget?: unknown };
    return String(body.budget ?? 'not reported');
  } catch (err) {
    return `unknown (${String(err)})`;
  }
}

/** Sets a process's nice value; says what it got (raising priority needs root or CAP_SYS_NICE). */
function raisePriority(pid: number, nice: number): string {
  try {
    setPriority(pid, nice);
    return `nice ${nice}`;
  } catch (err) {
    return `unchanged (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
}

/** Null when the Redis scenarios can run; else why not. */
async function whyNoRedis(): Promise<string | null> {
  if (!existsSync(fileURLToPath(new URL('../dist/upstream/redis-budget.js', import.meta.url)))) {
    return 'the Redis rate budget (src/upstream/redis-budget.ts) is not built yet';
  }
  const { hostname, port } = new URL(redisUrl);
  const answer = await new Promise<string>((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) || 6379 });
    const done = (text: string) => {
      socket.destroy();
      resolve(text);
    };
    socket.setTimeout(1000, () => done('timeout'));
    socket.once('error', (err) => done(err.message));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (chunk) => done(chunk.toString().trim()));
  });
  return answer === '+PONG' ? null : `Redis at ${redisUrl} is not reachable (${answer})`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
