/**
 * The one function that makes TIM REST calls: signed URL, JSON body, keep-alive
 * connection, a time limit, and every failure turned into a TimError.
 * One call is one attempt: pacing and retries belong to the layer above.
 * Commands and their bodies are typed by the
 * command table (commands.ts), which also says which accounts a call names.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { randomInt } from 'node:crypto';
import fetch from 'node-fetch';
import { jsonObjectOf } from '../json.js';
import { TimError } from './errors.js';
import type { AdminSigner } from './usersig.js';
import { accountsIn, type AnswerOf, type Command, type RequestOf } from './commands.js';
import { TIM_SERVICE, type CommonAnswer } from './wire.js';

export interface TimClientOptions {
  baseUrl: string;
  sdkappid: number;
  signer: AdminSigner;
  timeoutMs: number;
}

/** What one attempt did, for logs and metrics; never carries the usersig. */
export interface CallRecord {
  command: Command;
  accounts: number;
  durationMs: number;
  outcome: 'ok' | 'fail' | 'unavailable';
  errorCode: number;
}

export class TimClient {
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly listeners: Array<(record: CallRecord) => void> = [];

  constructor(private readonly opts: TimClientOptions) {
    const agentOpts = { keepAlive: true, maxSockets: 256, keepAliveMsecs: 10_000 };
    this.agent = opts.baseUrl.startsWith('https:') ? new HttpsAgent(agentOpts) : new HttpAgent(agentOpts);
  }

  onCall(listener: (record: CallRecord) => void): void {
    this.listeners.push(listener);
  }

  /** Signs a new admin UserSig now (the upstream said 70001). */
  renewSig(): void {
    this.opts.signer.renew();
  }

  /**
   * Resolves with the answer when ActionStatus is OK; rejects with a TimError otherwise.
   * `timeLeftMs` shortens the time limit when the caller's own deadline is nearer.
   */
  async call<C extends Command>(command: C, body: RequestOf<C>, timeLeftMs = Infinity): Promise<AnswerOf<C>> {
    const started = performance.now();
    const accounts = accountsIn(command, body).length;
    try {
      const answer = await this.post<AnswerOf<C>>(
        command,
        body,
        Math.max(1, Math.min(this.opts.timeoutMs, timeLeftMs)),
      );
      this.report({ command, accounts, durationMs: performance.now() - started, outcome: 'ok', errorCode: 0 });
      return answer;
    } catch (err) {
      const timErr =
        err instanceof TimError
          ? err
          : TimError.unavailable(`TIM call failed: ${describe(err)}`, undefined, { notSent: failedBeforeSending(err) });
      const outcome = timErr.kind === 'upstream' ? 'fail' : 'unavailable';
      this.report({ command, accounts, durationMs: performance.now() - started, outcome, errorCode: timErr.code });
      throw timErr;
    }
  }

  close(): void {
    this.agent.destroy();
  }

  private async post<A extends CommonAnswer>(command: Command, body: object, timeoutMs: number): Promise<A> {
    const res = await fetch(this.urlFor(command), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      agent: this.agent,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (res.status !== 200) throw TimError.unavailable(`TIM answered HTTP ${res.status}`, res.status);
    const answer = parseAnswer(text);
    if (!answer) throw TimError.unavailable('TIM answered something that is not a TIM answer', res.status);
    if (answer.ActionStatus !== 'OK' || answer.ErrorCode !== 0) {
      throw TimError.fail(answer.ErrorCode, answer.ErrorInfo);
    }
    return answer as A;
  }

  private urlFor(command: Command): string {
    const query = new URLSearchParams({
      sdkappid: String(this.opts.sdkappid),
      identifier: this.opts.signer.identifier,
      usersig: this.opts.signer.sig(),
      // A fresh unsigned 32-bit value per call, as the upstream asks.
      random: String(randomInt(0, 2 ** 32)),
      contenttype: 'json',
    });
    return `${this.opts.baseUrl}/v4/${TIM_SERVICE}/${command}?${query}`;
  }

  private report(record: CallRecord): void {
    for (const listener of this.listeners) listener(record);
  }
}

function parseAnswer(text: string): CommonAnswer | null {
  const a = jsonObjectOf(text);
  if (!a) return null;
  if (a.ActionStatus !== 'OK' && a.ActionStatus !== 'FAIL') return null;
  if (typeof a.ErrorCode !== 'number') return null;
  return { ...a, ErrorInfo: typeof a.ErrorInfo === 'string' ? a.ErrorInfo : '' } as CommonAnswer;
}

/**
 * Whether the request surely never reached TIM: no connection could be made
 * (refused, no route, no such host). A reset or timeout on a connection that
 * was open may come after TIM read the request, so it does not count.
 */
function failedBeforeSending(err: unknown): boolean {
  const code = err instanceof Error ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && NOT_SENT_CODES.has(code);
}

const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** A failure's description without anything from the URL (which holds the usersig). */
function describe(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') return 'timed out';
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? code : err.name;
  }
  return 'unknown error';
}
