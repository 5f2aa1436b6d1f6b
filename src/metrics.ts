/**
 * The gateway's Prometheus metrics. Each gateway owns one Registry (never
 * prom-client's global one), so two gateways in one process count apart.
 *
 * Our own names start with `graphql_` (what clients asked) or `tim_tags_`
 * (what the gateway did upstream); Node's default process metrics keep their
 * standard names so that stock dashboards work.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CallRecord } from './tim/client.js';
import type { Command } from './tim/commands.js';
import type { CircuitState } from './upstream/circuit.js';
import type { UpstreamEvents } from './upstream/upstream.js';
import { memoized } from './memo.js';

/** Seconds; from a cache-speed answer to a request that used its whole time. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds spent waiting for the rate budget; 0 is its own bucket (no wait at all). */
const WAIT_BUCKETS = [0, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Accounts in one upstream call: at most 100 (TIM's limit). */
const ACCOUNT_BUCKETS = [1, 5, 10, 25, 50, 75, 100];

const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'half-open', 'open'];

/**
 * Operation names come from clients: each distinct name is a time series, so
 * only plain names are kept, and only the first `MAX_OPERATION_NAMES` of them.
 */
const MAX_OPERATION_NAMES = 200;
const PLAIN_NAME = /^[_A-Za-z][_0-9A-Za-z]{0,63}$/;
/** Request series kept at hand: operation names are capped, outcomes are codes, so this is never reached in practice. */
const MAX_CACHED_SERIES = 2000;

/** A histogram series observed on a request's path, or a counter series counted there. */
export interface HistogramSeries {
  observe(value: number): void;
}
export interface CounterSeries {
  inc(): void;
}

type Labels = Record<string, string | number>;
/** What prom-client keeps of a histogram's and a counter's series (15.x), by the key it hashes a label set to. */
interface HistogramInternals {
  hashMap?: Record<string, { sum: number; count: number; bucketValues: Record<string, number> } | undefined>;
  upperBounds?: number[];
  sortedLabelNames?: string[];
}
interface CounterInternals {
  hashMap?: Record<string, { value: number } | undefined>;
  sortedLabelNames?: string[];
}

/** prom-client's key for a label set: `name:value,` for each label, by sorted name. */
function keyOf(sortedNames: readonly string[], labels: Labels): string {
  let key = '';
  for (const name of sortedNames) if (labels[name] !== undefined) key += `${name}:${labels[name]},`;
  return key;
}

/**
 * One series of a histogram, observed as prom-client's own `labels(...).observe` does, without its
 * per-call work (a label object built, checked and hashed to a string: about 0.3 µs, ten times a
 * request). The series' values are prom-client's own: the first observation, and any after a reset,
 * go through prom-client, and every later one adds to the values it made. Where prom-client keeps
 * them differently (another major version), every observation goes through it.
 */
export function histogramSeries(histogram: Histogram<string>, labels: Labels): HistogramSeries {
  const child = histogram.labels(labels); // checks the label names once
  const inner = histogram as unknown as HistogramInternals;
  if (typeof inner.hashMap !== 'object' || !Array.isArray(inner.upperBounds) || !inner.sortedLabelNames) return child;
  const key = keyOf(inner.sortedLabelNames, labels);
  const bounds = inner.upperBounds;
  // The buckets' keys as prom-client writes them, made once: a number key is made a string on every use.
  const bucketKeys = bounds.map(String);
  return {
    observe(value) {
      const values = inner.hashMap![key];
      if (values === undefined || !Number.isFinite(value)) return child.observe(value);
      values.sum += value;
      values.count += 1;
      for (let i = 0; i < bounds.length; i++)
        if (value <= bounds[i]!) {
          values.bucketValues[bucketKeys[i]!]! += 1;
          return;
        }
    },
  };
}

/** The same for one series of a counter, counted by one. */
export function counterSeries(counter: Counter<string>, labels: Labels): CounterSeries {
  const child = counter.labels(labels);
  const inner = counter as unknown as CounterInternals;
  if (typeof inner.hashMap !== 'object' || !inner.sortedLabelNames) return { inc: () => child.inc() };
  const key = keyOf(inner.sortedLabelNames, labels);
  return {
    inc() {
      const values = inner.hashMap![key];
      if (values === undefined) child.inc();
      else values.value += 1;
    },
  };
}

/** How one GraphQL request ended: `ok`, or the `extensions.code` of its first error. */
export interface GraphQLRequestRecord {
  operation: string | null;
  outcome: string;
  durationMs: number;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  private readonly operationNames = new Set<string>();
  /** One series per operation and outcome (the key joins them with a NUL). */
  private readonly requestSeries = memoized((key) => {
    const [operation, outcome] = key.split('\u0000') as [string, string];
    return histogramSeries(this.requests, { operation, outcome });
  }, MAX_CACHED_SERIES);
  private circuitSource: (() => CircuitState) | null = null;

  private readonly requests = new Histogram({
    name: 'graphql_request_duration_seconds',
    help: 'GraphQL requests by operation name and outcome (ok, or the first error code), with their durations',
    labelNames: ['operation', 'outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });

  /** Counted here and read when scraped: a gauge's inc and dec each hash a label set and store a new value object. */
  private requestsInFlight = 0;
  private readonly inFlight: Gauge = new Gauge({
    name: 'graphql_requests_in_flight',
    help: 'GraphQL requests being served now',
    registers: [this.registry],
    collect: () => this.inFlight.set(this.requestsInFlight),
  });

  private readonly upstreamCalls = new Histogram({
    name: 'tim_tags_upstream_call_duration_seconds',
    help: 'TIM REST calls (each attempt) by command and outcome (ok, fail: TIM said FAIL, unavailable), with their durations',
    labelNames: ['command', 'outcome', 'code'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });

  private readonly callAccounts = new Histogram({
    name: 'tim_tags_upstream_call_accounts',
    help: 'Accounts sent in one TIM REST call (at most 100)',
    labelNames: ['command'] as const,
    buckets: ACCOUNT_BUCKETS,
    registers: [this.registry],
  });

  private readonly budgetWaits = new Histogram({
    name: 'tim_tags_budget_wait_seconds',
    help: 'Time an upstream call waited for a slot of the rate budget (TIM_MAX_QPS)',
    buckets: WAIT_BUCKETS,
    registers: [this.registry],
  });

  private readonly rateLimited = new Counter({
    name: 'tim_tags_rate_limited_accounts_total',
    help: 'Account lookups or writes refused with RATE_LIMITED: the budget could not serve them in time',
    registers: [this.registry],
  });

  private readonly cacheLookups = new Counter({
    name: 'tim_tags_cache_lookups_total',
    help: 'Account lookups asked of the tag cache (TAGS_CACHE_TTL_MS), by result: hit or miss',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  private readonly retries = new Counter({
    name: 'tim_tags_upstream_retries_total',
    help: 'Upstream calls tried again, by command and the code that caused it (TIM ErrorCode; 0 for network, timeout or HTTP 5xx)',
    labelNames: ['command', 'code'] as const,
    registers: [this.registry],
  });

  private readonly circuitTransitions = new Counter({
    name: 'tim_tags_circuit_transitions_total',
    help: 'Times the upstream circuit breaker changed state, by the state it went to',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const source = () => this.circuitSource?.() ?? 'closed';
    new Gauge({
      name: 'tim_tags_circuit_state',
      help: 'The upstream circuit breaker: 1 for its current state (closed, half-open, open), 0 for the others',
      labelNames: ['state'] as const,
      registers: [this.registry],
      // Read at scrape time: `half-open` is a matter of the clock, not an event.
      collect() {
        const current = source();
        for (const state of CIRCUIT_STATES) this.set({ state }, state === current ? 1 : 0);
      },
    });
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /** The Prometheus text for /metrics. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Where the circuit gauge reads its state. */
  watchCircuit(state: () => CircuitState): void {
    this.circuitSource = state;
  }

  // --- GraphQL side -----------------------------------------------------------

  requestStarted(): void {
    this.requestsInFlight++;
  }

  /** A request at the GraphQL path that turned out not to be one (the GraphiQL page). */
  requestAborted(): void {
    this.requestsInFlight--;
  }

  requestFinished(record: GraphQLRequestRecord): void {
    this.requestsInFlight--;
    const operation = this.operationLabel(record.operation);
    this.requestSeries(`${operation}\u0000${record.outcome}`).observe(record.durationMs / 1000);
  }

  /** The label an operation name is counted under: itself, `anonymous`, or `other` past the cap. */
  operationLabel(name: string | null): string {
    if (!name) return 'anonymous';
    if (!PLAIN_NAME.test(name)) return 'other';
    if (this.operationNames.has(name)) return name;
    if (this.operationNames.size >= MAX_OPERATION_NAMES) return 'other';
    this.operationNames.add(name);
    return name;
  }

  // --- upstream side (bound: these are handed to the client, upstream and circuit as callbacks) ---

  readonly upstreamCall = (call: CallRecord): void => {
    this.upstreamCalls.observe(
      { command: call.command, outcome: call.outcome, code: String(call.errorCode) },
      call.durationMs / 1000,
    );
    this.callAccounts.observe({ command: call.command }, call.accounts);
  };

  readonly circuitChanged = (state: CircuitState): void => {
    this.circuitTransitions.inc({ state });
  };

  /** The upstream layer's hooks, feeding the budget, rate-limit, retry and cache metrics. */
  readonly upstreamEvents: UpstreamEvents = {
    budgetWait: (ms: number) => this.budgetWaits.observe(ms / 1000),
    rateLimited: (accounts: number) => this.rateLimited.inc(accounts),
    retry: (command: Command, code: number) => this.retries.inc({ command, code: String(code) }),
    cache: (hits: number, misses: number) => {
      if (hits > 0) this.cacheLookups.inc({ result: 'hit' }, hits);
      if (misses > 0) this.cacheLookups.inc({ result: 'miss' }, misses);
    },
  };
}

/** Every metric this module defines, for the README and the tests. */
export const METRIC_NAMES = [
  'graphql_request_duration_seconds',
  'graphql_requests_in_flight',
  'tim_tags_upstream_call_duration_seconds',
  'tim_tags_upstream_call_accounts',
  'tim_tags_budget_wait_seconds',
  'tim_tags_rate_limited_accounts_total',
  'tim_tags_cache_lookups_total',
  'tim_tags_upstream_retries_total',
  'tim_tags_circuit_state',
  'tim_tags_circuit_transitions_total',
] as const;
