/** The emulator's public shapes: how it is started, what it records, which faults it can play. */
import type { UserTags } from '../tim/wire.js';
import type { AttributeSeed } from './attributes.js';

export interface EmulatorOptions {
  /** The app's credentials: calls must be signed for this sdkappid with this key, as this admin. */
  sdkappid: number;
  secretKey: string;
  adminIdentifier: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a random free port. */
  port?: number;
  /** Default 'demo': data/demo-users.json. */
  seed?: 'demo' | 'empty' | UserTags[];
  /**
   * The app's attribute names and users' values: default data/demo-attributes.json with the demo
   * seed, none with any other.
   */
  attributes?: 'demo' | 'empty' | AttributeSeed;
  /** Per command, in a sliding 1000 ms window; more answers 60007. Default 100, as the real service. */
  maxCallsPerSecond?: number;
  /** How im_get_tag answers an account with no tags: left out of UserTags (default 'omit') or `Tags: []`. */
  emptyTags?: 'omit' | 'empty';
  /**
   * Default false: every account exists. When true only seeded or written accounts exist, and
   * im_get_tag reports the others in ErrorList with 70107.
   */
  strictAccounts?: boolean;
  /** Added before every answer; default 0. */
  latencyMs?: number;
  /**
   * Recorded calls kept; past it the oldest half is dropped, so a long-running emulator (the one
   * `npm start` embeds) holds bounded memory. Default: unbounded, as tests and benchmarks read them all.
   */
  maxRecordedCalls?: number;
}

export interface RecordedCall {
  /** Arrival time in ms, Date.now-compatible with sub-ms precision. */
  at: number;
  /** The last path segment, e.g. 'im_get_tag'. */
  command: string;
  /** The URL query as received. */
  query: Record<string, string>;
  /** The parsed JSON body, or undefined when it was empty or not JSON. */
  body: unknown;
  /** To_Account (gets, remove_all) or UserTags[] / UserAttrs[] .To_Account (writes), as far as the body says. */
  accounts: string[];
  /** What the emulator answered (0 = OK); -1 for an HTTP fault or garbage. */
  errorCode: number;
  httpStatus: number;
}

/**
 * One injected misbehaviour. The parts compose: `hangMs` delays the answer; then `httpStatus`
 * (a short non-JSON body) wins over `garbage` (200 with a non-JSON body), which wins over
 * `errorCode` (ActionStatus FAIL). With none of those three the call is served normally.
 */
export interface Fault {
  errorCode?: number;
  errorInfo?: string;
  httpStatus?: number;
  garbage?: boolean;
  hangMs?: number;
  /** Only calls of this command (the last path segment); default every call. */
  command?: string;
}

/** Why a call is refused: TIM's ErrorCode and an ErrorInfo that names the broken rule. */
export interface Refusal {
  code: number;
  info: string;
}
