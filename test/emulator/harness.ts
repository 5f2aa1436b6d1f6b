/** Shared by the emulator tests: an app's credentials, signing, and one-line TIM calls. */
import { signUserSig, type SigFields } from '../../src/tim/usersig.js';
import { TimEmulator, type EmulatorOptions } from '../../src/emulator/index.js';

export const APP = { sdkappid: 1400000001, secretKey: 'emulator-test-key', adminIdentifier: 'administrator' } as const;

export function startEmulator(opts: Partial<EmulatorOptions> = {}): Promise<TimEmulator> {
  return TimEmulator.start({ ...APP, ...opts });
}

/** A UserSig for the test app's admin, valid for a day from now unless overridden. */
export function sign(fields: Partial<SigFields> = {}, secretKey: string = APP.secretKey): string {
  return signUserSig(
    {
      sdkappid: APP.sdkappid,
      identifier: APP.adminIdentifier,
      time: Math.floor(Date.now() / 1000),
      expire: 86400,
      ...fields,
    },
    secretKey,
  );
}

export interface CallOptions {
  /** Query parameters to change; undefined removes one. */
  query?: Record<string, string | undefined>;
  /** Sent as is instead of JSON.stringify(body). */
  rawBody?: string;
  service?: string;
}

export interface CallResult {
  status: number;
  text: string;
  /** The parsed answer, or undefined when it is not JSON. */
  json: TimAnswer | undefined;
  ms: number;
}

export interface TimAnswer {
  ActionStatus: string;
  ErrorCode: number;
  ErrorInfo: string;
  RequestId?: string;
  UserTags?: Array<{ To_Account: string; Tags: string[] }>;
  ErrorList?: Array<{ To_Account: string; ErrorCode: number; ErrorInfo?: string }>;
}

export async function callTim(
  emulator: TimEmulator,
  command: string,
  body?: unknown,
  opts: CallOptions = {},
): Promise<CallResult> {
  const params: Record<string, string | undefined> = {
    sdkappid: String(APP.sdkappid),
    identifier: APP.adminIdentifier,
    usersig: sign(),
    random: '12345',
    contenttype: 'json',
    ...opts.query,
  };
  const search = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined));
  const started = performance.now();
  const res = await fetch(`${emulator.url}/v4/${opts.service ?? 'all_member_push'}/${command}?${search}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: opts.rawBody ?? JSON.stringify(body ?? {}),
  });
  const text = await res.text();
  let json: TimAnswer | undefined;
  try {
    json = JSON.parse(text) as TimAnswer;
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json, ms: performance.now() - started };
}

/** The ErrorCode of a call that must be a TIM answer. */
export async function codeOf(
  emulator: TimEmulator,
  command: string,
  body?: unknown,
  opts?: CallOptions,
): Promise<number> {
  const result = await callTim(emulator, command, body, opts);
  if (result.status !== 200 || !result.json) throw new Error(`not a TIM answer: HTTP ${result.status} ${result.text}`);
  return result.json.ErrorCode;
}

export function tagsNamed(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i}`);
}
