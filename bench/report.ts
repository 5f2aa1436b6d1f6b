/** The bench's results: one row per scenario and mode, printed as a markdown table and checked against the issues' targets. */
import type { Mode } from './scenarios.js';

/**
 * Who served a row: this checkout's gateway, the reference (naive.mjs), the gateway at a baseline commit,
 * the floor (floor.mjs, a bare node:http server), or the ceiling (this build's upstream layer behind a
 * bare node:http server, bench/serve.ts's startCeiling).
 */
export type Server = 'gateway' | 'reference' | 'floor' | 'ceiling' | `baseline ${string}`;

/** The reference and the floor: plain server scripts, with no coalescing mode, budget or gateway build. */
export const isPlainServer = (server: Server): server is 'reference' | 'floor' =>
  server === 'reference' || server === 'floor';

export interface Row {
  key: string;
  scenario: string;
  server: Server;
  mode: Mode;
  /** Whether the upstream held the real limit (100 calls/s); false for the no-limit scenarios. */
  limited: boolean;
  gateways: number;
  durationS: number;
  reqPerS: number;
  okReqPerS: number;
  okLookupsPerS: number;
  p50Ms: number;
  p99Ms: number;
  upstreamCallsPerS: number;
  accountsPerCall: number;
  peakCallsInOneSecond: number;
  /** The same peak over the times the gateways sent their calls: above it, calls bunched on the way. */
  peakDeparturesInOneSecond: number;
  /** Errors in response bodies by code (one per failed user), socket errors, and the upstream's refusals as `TIM nnnnn`. */
  errors: Record<string, number>;
  /** CPU time the serving processes spent per response, in microseconds: less noisy than req/s on a busy machine. */
  cpuUsPerReq: number;
  /** Peak RSS of each gateway process during the measure. */
  rssMb: number[];
  /** Where the gateways said their rate budget lives (/readyz). */
  budget: string;
  /** Users answered with both tags and attributes. */
  okBothLookupsPerS: number;
  /** Every command the emulator saw during the measure: calls/s and the most in any sliding second. */
  byCommand: Record<string, { callsPerS: number; peakInOneSecond: number }>;
  /**
   * ok req/s of every round this row ran, in order, when it ran more than one (`--rounds`): the row
   * is the median round's, so one slow moment of a shared machine moves no ratio.
   */
  rounds?: number[];
  /** The scenario's background load (not counted above), when it has one. */
  background?: { reqPerS: number; okReqPerS: number; errors: Record<string, number> };
}

export interface Skipped {
  key: string;
  scenario: string;
  why: string;
}

export interface Check {
  target: string;
  measured: string;
  met: boolean;
}

/** The physical limit: 100 calls of 100 accounts each per second. */
export const UPSTREAM_LOOKUPS_PER_SECOND = 10_000;
export const UPSTREAM_CALLS_PER_SECOND = 100;

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const one = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');

export function table(rows: Row[]): string {
  const head = [
    'scenario',
    'server',
    'coalescing',
    'req/s',
    'ok req/s',
    'ok lookups/s',
    'p50 ms',
    'p99 ms',
    'upstream calls/s',
    'accounts/call',
    'peak calls in 1 s (arrived / sent)',
    'errors (count)',
    'RSS MB',
    'CPU µs/req',
  ];
  const rounds = rows.some((r) => r.rounds);
  if (rounds) head.push('ok req/s of each round');
  const lines = rows.map((r) => [
    r.scenario,
    r.server,
    isPlainServer(r.server) ? '-' : r.mode,
    int(r.reqPerS),
    int(r.okReqPerS),
    int(r.okLookupsPerS),
    String(r.p50Ms),
    String(r.p99Ms),
    one(r.upstreamCallsPerS),
    one(r.accountsPerCall),
    `${r.peakCallsInOneSecond} / ${Number.isNaN(r.peakDeparturesInOneSecond) ? '-' : r.peakDeparturesInOneSecond}`,
    describeErrors(r.errors),
    r.rssMb.map((mb) => mb.toFixed(0)).join(' + '),
    int(r.cpuUsPerReq),
    ...(rounds ? [r.rounds ? r.rounds.map(int).join(', ') : '-'] : []),
  ]);
  return [head, head.map(() => '---'), ...lines].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

/** The median round of one row's rounds (by ok lookups/s; the lower middle of an even count), with every round's ok req/s. */
export function medianRound(rounds: Row[]): Row {
  if (rounds.length === 1) return rounds[0]!;
  const sorted = [...rounds].sort((a, b) => a.okLookupsPerS - b.okLookupsPerS);
  return { ...sorted[Math.floor((sorted.length - 1) / 2)]!, rounds: rounds.map((r) => r.okReqPerS) };
}

function describeErrors(errors: Record<string, number>): string {
  const entries = Object.entries(errors).sort((a, b) => b[1] - a[1]);
  return entries.length === 0 ? 'none' : entries.map(([what, n]) => `${what} ${int(n)}`).join(', ');
}

/** On/off ratios for every scenario measured both ways. */
export function ratios(rows: Row[]): string[] {
  const out: string[] = [];
  for (const on of rows.filter((r) => r.mode === 'on' && r.server === 'gateway')) {
    const off = rows.find((r) => r.key === on.key && r.mode === 'off' && r.server === 'gateway');
    if (!off) continue;
    out.push(
      `${on.scenario}: coalescing on/off = ${ratio(on.reqPerS, off.reqPerS)} req/s, ` +
        `${ratio(on.okReqPerS, off.okReqPerS)} ok req/s, ${ratio(on.okLookupsPerS, off.okLookupsPerS)} ok lookups/s`,
    );
  }
  return out;
}

/** Gateway / reference, gateway / baseline and gateway / floor, for every scenario that ran on any of them. */
export function comparisons(rows: Row[]): string[] {
  const out: string[] = [];
  for (const other of rows.filter((r) => r.server !== 'gateway')) {
    const ours = rows.find((r) => r.key === other.key && r.mode === 'on' && r.server === 'gateway');
    if (!ours) continue;
    out.push(
      `${ours.scenario}: gateway / ${other.server} = ${ratio(ours.okReqPerS, other.okReqPerS, 2)} ok req/s ` +
        `(${int(ours.okReqPerS)} vs ${int(other.okReqPerS)}), ${ratio(ours.okLookupsPerS, other.okLookupsPerS, 2)} ok lookups/s, ` +
        `RSS ${ratio(sum(ours.rssMb), sum(other.rssMb), 2)} (${sum(ours.rssMb).toFixed(0)} vs ${sum(other.rssMb).toFixed(0)} MB), ` +
        `p99 ${ours.p99Ms} vs ${other.p99Ms} ms, CPU per request ${ratio(ours.cpuUsPerReq, other.cpuUsPerReq, 2)} ` +
        `(${int(ours.cpuUsPerReq)} vs ${int(other.cpuUsPerReq)} µs)`,
    );
  }
  return out;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

function ratio(a: number, b: number, digits = 1): string {
  return b > 0 ? `x${(a / b).toFixed(digits)}` : a > 0 ? 'x(inf)' : '-';
}

/** Issue 4's, 5's and 14's targets, for the rows that were measured. */
export function checks(allRows: Row[]): Check[] {
  const rows = allRows.filter((r) => r.server === 'gateway');
  const row = (key: string, mode: Mode) => rows.find((r) => r.key === key && r.mode === mode);
  const out: Check[] = [];
  const reference = (key: string) => allRows.find((r) => r.key === key && r.server === 'reference');

  const ten = row('ten', 'on');
  if (ten) {
    out.push({
      target: 'ten users per request: >= 9,000 ok lookups/s',
      measured: `${int(ten.okLookupsPerS)} ok lookups/s`,
      met: ten.okLookupsPerS >= 0.9 * UPSTREAM_LOOKUPS_PER_SECOND,
    });
    out.push(upstreamWithinLimit('ten users per request', ten));
    out.push({ target: 'ten users per request: p99 < 250 ms', measured: `p99 ${ten.p99Ms} ms`, met: ten.p99Ms < 250 });
  }

  for (const [key, times] of [
    ['free-hundred', 1.2],
    ['free-single', 3],
  ] as const) {
    const ours = row(key, 'on');
    const ref = reference(key);
    if (!ours || !ref) continue;
    const x = ours.okReqPerS / ref.okReqPerS;
    out.push({
      target: `${ours.scenario}: >= ${times}x the reference's ok req/s`,
      measured: `x${x.toFixed(2)} (${int(ours.okReqPerS)} vs ${int(ref.okReqPerS)} ok req/s)`,
      met: x >= times,
    });
    const rss = sum(ours.rssMb) / sum(ref.rssMb);
    out.push({
      target: `${ours.scenario}: RSS <= 1.0x the reference's`,
      measured: `x${rss.toFixed(2)} (${sum(ours.rssMb).toFixed(0)} vs ${sum(ref.rssMb).toFixed(0)} MB)`,
      met: rss <= 1,
    });
  }

  const tenWrites = row('ten-writes', 'on');
  if (tenWrites) {
    out.push({
      target: 'ten users per request, tag writes at 50 calls/s beside: >= 9,000 ok lookups/s',
      measured: `${int(tenWrites.okLookupsPerS)} ok lookups/s; writes ${int(tenWrites.background?.okReqPerS ?? 0)} ok/s`,
      met: tenWrites.okLookupsPerS >= 0.9 * UPSTREAM_LOOKUPS_PER_SECOND,
    });
    out.push(commandsWithinLimit('ten users per request, tag writes beside', tenWrites, false));
  }
  const tenAttrs = row('ten-attrs', 'on');
  if (tenAttrs) {
    out.push({
      target: 'tags and attributes of ten users per request: >= 9,000 users/s with both fields',
      measured: `${int(tenAttrs.okBothLookupsPerS)} users/s with both`,
      met: tenAttrs.okBothLookupsPerS >= 0.9 * UPSTREAM_LOOKUPS_PER_SECOND,
    });
    out.push(commandsWithinLimit('tags and attributes of ten users per request', tenAttrs, true));
  }

  const singleOn = row('single', 'on');
  const singleOff = row('single', 'off');
  for (const [key, what] of [
    ['single', 'single user at the real limit'],
    ['single-wide', 'single user at the real limit, 400 conns'],
  ] as const) {
    const on = row(key, 'on');
    if (!on) continue;
    // The floor's rate says how much of the absolute target this machine and load generator leave to any server.
    const floor = allRows.find((r) => r.key === key && r.server === 'floor');
    const ceiling = allRows.find((r) => r.key === key && r.server === 'ceiling');
    out.push({
      target: `${what}: >= 8,000 ok lookups/s`,
      measured:
        `${int(on.okLookupsPerS)} ok lookups/s, ${((on.okLookupsPerS / UPSTREAM_LOOKUPS_PER_SECOND) * 100).toFixed(0)}% of the 10,000 limit` +
        (floor
          ? `; the floor (a bare node:http server) answered ${int(floor.okReqPerS)} req/s here, the gateway ${ratio(on.okReqPerS, floor.okReqPerS, 2)} of it`
          : '') +
        (ceiling
          ? `; the ceiling (the gateway's upstream layer with no GraphQL) ${int(ceiling.okLookupsPerS)} ok lookups/s, the gateway ${ratio(on.okLookupsPerS, ceiling.okLookupsPerS, 2)} of it`
          : ''),
      met: on.okLookupsPerS >= 8000,
    });
    const base = allRows.find((r) => r.key === key && r.server.startsWith('baseline'));
    if (base) {
      const x = on.okLookupsPerS / base.okLookupsPerS;
      out.push({
        target: `${what}: >= 1.6x the ${base.server}`,
        measured: `x${x.toFixed(2)} (${int(on.okLookupsPerS)} vs ${int(base.okLookupsPerS)} ok lookups/s)`,
        met: x >= 1.6,
      });
    }
  }
  if (singleOn && singleOff) {
    const x = singleOff.okReqPerS > 0 ? singleOn.okReqPerS / singleOff.okReqPerS : Infinity;
    out.push({
      target: 'single user: >= 20x the ok req/s of coalescing off',
      measured: `x${x.toFixed(1)} (${int(singleOn.okReqPerS)} vs ${int(singleOff.okReqPerS)} ok req/s)`,
      met: x >= 20,
    });
  }

  for (const r of rows) {
    if (!r.limited || ((r.key === 'ten' || r.key === 'redis-ten') && r.mode === 'on')) continue;
    if (r.peakCallsInOneSecond > UPSTREAM_CALLS_PER_SECOND)
      out.push(upstreamWithinLimit(`${r.scenario} (${r.mode})`, r));
  }

  const redisTen = row('redis-ten', 'on');
  if (redisTen) {
    out.push({
      target: 'two gateways + Redis, ten users per request: >= 9,000 ok lookups/s',
      measured: `${int(redisTen.okLookupsPerS)} ok lookups/s`,
      met: redisTen.okLookupsPerS >= 0.9 * UPSTREAM_LOOKUPS_PER_SECOND,
    });
    out.push(upstreamWithinLimit('two gateways + Redis', redisTen));
  }
  for (const key of ['hot', 'redis-hot-1', 'redis-hot']) {
    const hot = row(key, 'on');
    if (!hot) continue;
    out.push({
      target: `${hot.scenario}: >= 50,000 ok lookups/s (5x the physical limit)`,
      measured: `${int(hot.okLookupsPerS)} ok lookups/s`,
      met: hot.okLookupsPerS >= 5 * UPSTREAM_LOOKUPS_PER_SECOND,
    });
  }
  return out;
}

function upstreamWithinLimit(what: string, r: Row): Check {
  return {
    target: `${what}: upstream <= 100 calls/s, never over 100 in a sliding second`,
    measured: `${one(r.upstreamCallsPerS)} calls/s, peak ${r.peakCallsInOneSecond} in one second`,
    met: r.upstreamCallsPerS <= UPSTREAM_CALLS_PER_SECOND && r.peakCallsInOneSecond <= UPSTREAM_CALLS_PER_SECOND,
  };
}

/** Each command the emulator saw within its own limit: never over 100 in a sliding second (and, with `rate`, <= 100 calls/s). */
function commandsWithinLimit(what: string, r: Row, rate: boolean): Check {
  const commands = Object.entries(r.byCommand).sort(([a], [b]) => a.localeCompare(b));
  return {
    target: `${what}: ${rate ? 'each command <= 100 calls/s and ' : ''}no command over 100 calls in a sliding second`,
    measured: commands.length
      ? commands.map(([c, n]) => `${c} ${one(n.callsPerS)} calls/s, peak ${n.peakInOneSecond}`).join('; ')
      : 'no upstream calls',
    met:
      commands.length > 0 &&
      commands.every(
        ([, n]) =>
          n.peakInOneSecond <= UPSTREAM_CALLS_PER_SECOND && (!rate || n.callsPerS <= UPSTREAM_CALLS_PER_SECOND),
      ),
  };
}

export interface Setting {
  name: string;
  value: string;
}

export function markdown(opts: {
  startedAt: Date;
  settings: Setting[];
  rows: Row[];
  skipped: Skipped[];
  checks: Check[];
  ratios: string[];
  comparisons: string[];
  soak: SoakResult[];
  profiles: string[];
}): string {
  const parts = [
    `# Benchmark, ${opts.startedAt.toISOString()}`,
    '',
    opts.settings.map((s) => `- ${s.name}: ${s.value}`).join('\n'),
    '',
    table(opts.rows),
    '',
    'ok = a response with no `errors`; ok lookups = users answered with a tag list. Errors count one per failed user; ' +
      '`TIM nnnnn` are calls the emulator refused. Upstream columns count `im_get_tag` calls seen by the emulator ' +
      'during the measure; peak = most calls in any sliding second (maxCallsInWindow), as they arrived at the emulator / ' +
      'as the gateways sent them.',
  ];
  const mixed = opts.rows.filter((r) => r.background || Object.keys(r.byCommand).length > 1);
  if (mixed.length > 0) parts.push('', '## Calls by command', '', mixed.map((r) => `- ${describeMixed(r)}`).join('\n'));
  if (opts.comparisons.length > 0)
    parts.push('', '## Gateway / reference, baseline and floor', '', opts.comparisons.map((r) => `- ${r}`).join('\n'));
  if (opts.ratios.length > 0) parts.push('', '## Coalescing on / off', '', opts.ratios.map((r) => `- ${r}`).join('\n'));
  if (opts.soak.length > 0) parts.push('', '## Soak', '', opts.soak.map((s) => `- ${describeSoak(s)}`).join('\n'));
  if (opts.checks.length > 0) {
    parts.push(
      '',
      '## Targets',
      '',
      opts.checks.map((c) => `- [${c.met ? 'x' : ' '}] ${c.target}: ${c.measured}`).join('\n'),
    );
  }
  if (opts.skipped.length > 0) {
    parts.push('', '## Skipped', '', opts.skipped.map((s) => `- ${s.scenario}: ${s.why}`).join('\n'));
  }
  if (opts.profiles.length > 0) parts.push('', '## CPU profiles (gateway, self time)', '', ...opts.profiles);
  return `${parts.join('\n')}\n`;
}

/** A row's calls by command and its background load, for the scenarios that send more than im_get_tag. */
function describeMixed(r: Row): string {
  const commands = Object.entries(r.byCommand)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([c, n]) => `${c} ${one(n.callsPerS)} calls/s (peak ${n.peakInOneSecond})`)
    .join(', ');
  const bg = r.background;
  const beside = bg
    ? `; background ${int(bg.reqPerS)} req/s, ${int(bg.okReqPerS)} ok` +
      (Object.keys(bg.errors).length
        ? ` (${Object.entries(bg.errors)
            .map(([c, n]) => `${c} ${n}`)
            .join(', ')})`
        : '')
    : '';
  return `${r.scenario}, ${r.server}: ${commands}; ${int(r.okBothLookupsPerS)} users/s with tags and attributes${beside}`;
}

/** Memory of one gateway over a long run: after the warm-up, and at the end (both after a full GC). */
export interface SoakResult {
  scenario: string;
  durationS: number;
  okReqPerS: number;
  start: { rssMb: number; heapMb: number };
  end: { rssMb: number; heapMb: number };
}

/** Flat: heap and RSS at the end within 10% of the start. */
export function soakFlat(s: SoakResult): boolean {
  return s.end.rssMb <= s.start.rssMb * 1.1 && s.end.heapMb <= s.start.heapMb * 1.1;
}

export function describeSoak(s: SoakResult): string {
  const pct = (end: number, start: number) =>
    `${end >= start ? '+' : ''}${(((end - start) / start) * 100).toFixed(1)}%`;
  return (
    `${soakFlat(s) ? 'FLAT  ' : 'GROWS '} ${s.scenario}, ${s.durationS.toFixed(0)} s at ${int(s.okReqPerS)} ok req/s: ` +
    `RSS ${s.start.rssMb.toFixed(0)} -> ${s.end.rssMb.toFixed(0)} MB (${pct(s.end.rssMb, s.start.rssMb)}), ` +
    `heap ${s.start.heapMb.toFixed(1)} -> ${s.end.heapMb.toFixed(1)} MB (${pct(s.end.heapMb, s.start.heapMb)})`
  );
}
