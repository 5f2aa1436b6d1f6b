/** The messages between the bench (parent) and its serving processes (bench/serve.ts), over IPC. */

export interface EmulatorStart {
  role: 'emulator';
  sdkappid: number;
  secretKey: string;
  latencyMs: number;
  maxCallsPerSecond: number;
}

export interface GatewayStart {
  role: 'gateway';
  /** The gateway's environment, read by loadConfig as in production. */
  env: Record<string, string>;
  coalesce: boolean;
  logFile: string;
  /** Serve single-user lookups straight from the gateway's upstream layer, with no GraphQL (serve.ts's startCeiling). */
  ceiling?: boolean;
}

/** What is started, and where the compiled gateway (dist/) is, as a file URL ending in `/`. */
export type StartMessage = (EmulatorStart | GatewayStart) & { distUrl: string };

/** Questions after the start; each is answered once, by `id`. */
export type Question =
  | { id: number; ask: 'reset' }
  | { id: number; ask: 'upstream'; since: number; until: number }
  /** With `gc`, after a full garbage collection when the process has one to call (`--expose-gc`). */
  | { id: number; ask: 'memory'; gc?: boolean }
  /** A gateway's upstream calls: when each attempt started, by its own clock (im_get_tag only). */
  | { id: number; ask: 'departures'; since: number; until: number }
  | { id: number; ask: 'stop' };

/** What the upstream saw of `im_get_tag` since the last reset. */
export interface UpstreamSummary {
  calls: number;
  accounts: number;
  /** Most calls in any sliding one-second window (maxCallsInWindow). */
  peakInOneSecond: number;
  /** Calls answered with an error, by TIM ErrorCode (-1: an HTTP fault or garbage). */
  errors: Record<string, number>;
  /** Every command's calls in the same window (the emulator limits each command on its own). */
  byCommand: Record<string, CommandCalls>;
}

export interface CommandCalls {
  calls: number;
  peakInOneSecond: number;
}

/** Resident set size in bytes: now, and the highest seen since the last reset; the JS heap in use now (NaN if unknown). */
export interface MemorySummary {
  rss: number;
  peakRss: number;
  heapUsed: number;
  /** CPU time (user + system) the process used since the last reset, in ms. */
  cpuMs: number;
}

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: string };

/** The first message a serving process sends: where it listens. */
export interface Ready {
  ready: true;
  url: string;
  pid: number;
}
