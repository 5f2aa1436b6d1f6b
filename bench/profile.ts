/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and says where the time
 * went: by layer of a request (each sample goes to the innermost frame on its
 * stack that belongs to a known layer: HTTP adapter, yoga's pipeline,
 * parse/validate, auth, execution, resolvers, loader, scheduler, TIM client,
 * serialization, logging, metrics), self time by module (a package, a file of
 * dist/, node's internals) and the hottest functions.
 * `node --import tsx bench/profile.ts FILE...` prints it.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  /** Time by layer of a request, highest first. */
  layers: Array<{ name: string; share: number }>;
  /** Self time share by module, highest first. */
  modules: Array<{ name: string; share: number }>;
  functions: Array<{ name: string; share: number }>;
}

export async function summarizeProfile(file: string, top = 12): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1;

  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);
  const layers = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const layer = layerOf(id, byId, parentOf);
    layers.set(layer, (layers.get(layer) ?? 0) + us);
  }

  const modules = new Map<string, number>();
  const functions = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const module = moduleOf(frame.url, frame.functionName);
    modules.set(module, (modules.get(module) ?? 0) + us);
    const fn =
      `${frame.functionName || '(anonymous)'} ${frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : ''}`.trim();
    functions.set(fn, (functions.get(fn) ?? 0) + us);
  }
  const ranked = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, share: us / total }));
  return { totalMs: total / 1000, layers: ranked(layers), modules: ranked(modules), functions: ranked(functions) };
}

/**
 * Layers, tried innermost frame first: the first rule that matches a frame's URL (or, for V8's
 * own entries, its name) names the layer of the sample.
 */
const LAYERS: Array<[string, RegExp]> = [
  ['garbage collection', /^\(garbage collector\)$/],
  ['idle', /^\(idle\)$/],
  ['logging', /node_modules\/(pino|sonic-boom|thread-stream)\/|\/dist\/logger\.js/],
  ['metrics', /node_modules\/prom-client\/|\/dist\/(metrics|plugins\/metrics)\.js/],
  ['auth', /\/dist\/plugins\/auth\.js|node_modules\/jose\//],
  [
    'parse + validate (armor included)',
    /node_modules\/graphql\/(language|validation)\/|graphql-armor|parser-cache|validation-cache/,
  ],
  ['serialization', /result-processor|stringify/],
  ['TIM client (sign, fetch)', /\/dist\/tim\/|node_modules\/undici\/|node:internal\/deps\/undici/],
  ['scheduler (src/upstream)', /\/dist\/upstream\//],
  ['loader (DataLoader)', /node_modules\/dataloader\//],
  ['resolvers (src/schema)', /\/dist\/schema\//],
  ['execution', /@graphql-tools\/executor|node_modules\/graphql\/execution\/|graphql-jit/],
  ['gateway plugins', /\/dist\/(plugins|http-edges|server)[/.]/],
  ['yoga pipeline (envelop, plugins hooks)', /node_modules\/(graphql-yoga|@envelop)\//],
  [
    'HTTP (node:http, the fast path, whatwg-node)',
    /@whatwg-node\/|\/dist\/fast-path\.js|node:_http|node:http|node:internal\/(streams|http|net)|node:net/,
  ],
];

function layerOf(id: number, byId: Map<number, ProfileNode>, parentOf: Map<number, number>): string {
  for (let at: number | undefined = id; at !== undefined; at = parentOf.get(at)) {
    const { url, functionName } = byId.get(at)!.callFrame;
    const subject = url || functionName;
    for (const [layer, rule] of LAYERS) if (rule.test(subject)) return layer;
  }
  const leaf = byId.get(id)!.callFrame;
  return leaf.functionName.startsWith('(') ? leaf.functionName : 'other (microtasks, native, node internals)';
}

/** A few markdown lines for the report. */
export function describeProfile(label: string, s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  return [
    `### ${label} (${(s.totalMs / 1000).toFixed(1)} s sampled)`,
    '',
    `- by layer: ${s.layers.map((l) => `${l.name} ${pct(l.share)}`).join(', ')}`,
    `- by module: ${s.modules.map((m) => `${m.name} ${pct(m.share)}`).join(', ')}`,
    `- hottest functions: ${s.functions.map((f) => `\`${f.name}\` ${pct(f.share)}`).join(', ')}`,
    '',
  ].join('\n');
}

/** `(idle)`, `(garbage collector)`, a package name, `dist/<file>` or `node:<module>`. */
function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const dist = /\/dist\/(.+)$/.exec(url);
  if (dist) return `dist/${dist[1]}`;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return basename(url);
}

function shortUrl(url: string): string {
  return url
    .replace(/^.*node_modules\//, '')
    .replace(/^.*\/dist\//, 'dist/')
    .replace(/^file:\/\/.*\//, '');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const file of process.argv.slice(2))
    console.log(describeProfile(basename(file), await summarizeProfile(file, 20)));
}
