/**
 * TimEmulator: a local stand-in for TIM's user-tag REST API on node:http, faithful to
 * shared/TIM-API.md, plus the knobs tests and benchmarks need (recorded calls, faults, latency).
 *
 * One call's story: the arrival is timed and counted against its command's rate window at
 * once (before the body is read, so the window sees true arrival order); once the body is in,
 * a pending fault may take the call over, otherwise the gate, the JSON parse, the rate verdict
 * and the command run in the service's order. The answer is decided (and any write applied)
 * at once and recorded; only sending it waits for the latency and any hang.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { PushCondition } from '../tim/commands.js';
import { TIM_SERVICE, TimCode, accountProblem, type AttrCommand, type TagCommand } from '../tim/wire.js';
import { AttributeStore, isAttrCommand, runAttrCommand, type AttrServed } from './attributes.js';
import { accountsMatching } from './audience.js';
import { isRefusal, isTagCommand, runTagCommand, type Served } from './commands.js';
import { CONTROL_PREFIX, handleControl } from './control.js';
import { FaultQueue, type FaultPlan } from './faults.js';
import { RequestGate } from './gate.js';
import { SlidingWindowLimiter } from './rate.js';
import { PushService } from './push.js';
import { loadAttributeSeed, loadSeed } from './seed.js';
import { TagStore } from './store.js';
import type { EmulatorOptions, Fault, RecordedCall } from './types.js';

/** Far above any real call (100 accounts x 10 tags x 50 bytes is about 60 KB). */
const MAX_BODY_BYTES = 1 << 20;
const TAG_PATH_PREFIX = `/v4/${TIM_SERVICE}/`;
const JSON_TYPE = 'application/json; charset=utf-8';
const GARBAGE_BODY = '<html><head><title>oops</title></head><body>upstream hiccup</body></html>';

/** What goes back on the wire, and what the call record says about it. */
interface Reply {
  status: number;
  contentType: string;
  text: string;
  /** -1 when the reply is not a TIM answer. */
  errorCode: number;
}

/** What is known about a call when its request line arrives. */
interface Arrival {
  at: number;
  method: string;
  path: string;
  query: Record<string, string>;
  command: string;
  /** The command when it is one the emulator serves. */
  known: TagCommand | AttrCommand | 'im_push' | null;
  withinRate: boolean;
}

export class TimEmulator {
  /**
   * Every call seen (control calls aside), recorded as its body completes: arrival order for
   * any body that fits in a packet, which every real one does.
   */
  readonly calls: RecordedCall[] = [];
  /** Added before each answer; may be changed at run time. */
  latencyMs: number;
  /** Added, per command, on top of `latencyMs`; may be changed at run time. */
  readonly latencyByCommand = new Map<string, number>();
  store: TagStore;
  /** The app's attribute names and each account's values. */
  attributes: AttributeStore;
  /** im_push's state: tasks with their recipients, quota, deduplication. */
  readonly pushes = new PushService();

  private readonly server: Server;
  private readonly gate: RequestGate;
  private readonly limiter: SlidingWindowLimiter;
  private readonly faults = new FaultQueue();
  private readonly emptyTags: 'omit' | 'empty';
  private readonly strictAccounts: boolean;
  /** Answers waiting out latency or a hang; cleared on close so nothing outlives the server. */
  private readonly delayed = new Set<NodeJS.Timeout>();
  private readonly requestIdPrefix = randomBytes(4).toString('hex');
  private requestCount = 0;
  private closing: Promise<void> | null = null;
  private readonly maxRecordedCalls: number;
  private where = { url: '', port: 0 };

  static async start(opts: EmulatorOptions): Promise<TimEmulator> {
    const problem = optionsProblem(opts);
    if (problem) throw new TypeError(`TimEmulator.start: ${problem}`);
    const attributes = new AttributeStore(await loadAttributeSeed(opts.attributes ?? opts.seed ?? 'demo'));
    const emulator = new TimEmulator(opts, new TagStore(await loadSeed(opts.seed)), attributes);
    await emulator.listen(opts.host ?? '127.0.0.1', opts.port ?? 0);
    return emulator;
  }

  private constructor(opts: EmulatorOptions, store: TagStore, attributes: AttributeStore) {
    this.store = store;
    this.attributes = attributes;
    this.latencyMs = opts.latencyMs ?? 0;
    this.gate = new RequestGate(opts);
    this.limiter = new SlidingWindowLimiter(opts.maxCallsPerSecond ?? 100);
    this.emptyTags = opts.emptyTags ?? 'omit';
    this.strictAccounts = opts.strictAccounts ?? false;
    this.maxRecordedCalls = opts.maxRecordedCalls ?? Infinity;
    this.server = createServer(this.onRequest);
    // Clients are told to keep connections alive; don't drop idle ones sooner than they expect.
    this.server.keepAliveTimeout = 65_000;
  }

  get port(): number {
    return this.where.port;
  }

  get url(): string {
    return this.where.url;
  }

  /** The accounts an im_push with this condition reaches (none: every account the emulator knows). */
  accountsMatching(condition?: PushCondition): string[] {
    return accountsMatching(this.store, this.attributes, condition);
  }

  resetCalls(): void {
    this.calls.length = 0;
  }

  /** The next `count` calls (only of `fault.command` if set), after skipping `skip` matching calls, get this fault. */
  injectFault(fault: Fault, opts?: FaultPlan): void {
    this.faults.add(fault, opts);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Stops listening, drops pending answers and ends every connection, keep-alive ones included. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve, reject) => {
      for (const timer of this.delayed) clearTimeout(timer);
      this.delayed.clear();
      this.server.close((err) => (err ? reject(err) : resolve()));
      this.server.closeAllConnections();
    });
    return this.closing;
  }

  private listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const { address, family, port: bound } = this.server.address() as AddressInfo;
        this.where = { url: `http://${family === 'IPv6' ? `[${address}]` : address}:${bound}`, port: bound };
        resolve();
      });
    });
  }

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const at = performance.timeOrigin + performance.now();
    const { path, query } = splitTarget(req.url ?? '/');
    const method = req.method ?? 'GET';
    if (path.startsWith(CONTROL_PREFIX)) {
      readBody(req, (raw) => handleControl(this, { method, path, query, raw }, res));
      return;
    }
    const command = path.slice(path.lastIndexOf('/') + 1);
    const served =
      path.startsWith(TAG_PATH_PREFIX) && (isTagCommand(command) || isAttrCommand(command) || command === 'im_push');
    const known = served ? command : null;
    // Every call that reaches a command counts against its own window, even one the gate will
    // refuse: the service has done work for it.
    const withinRate = known ? this.limiter.admit(known, at) : true;
    const arrival: Arrival = { at, method, path, query, command, known, withinRate };
    readBody(req, (raw) => this.answer(arrival, raw, res));
  };

  private answer(arrival: Arrival, raw: Buffer | null, res: ServerResponse): void {
    const body = raw ? parseJson(raw) : undefined;
    const fault = this.faults.take(arrival.command);
    const reply = (fault && this.faultReply(fault)) ?? this.serve(arrival, raw, body);
    this.calls.push({
      at: arrival.at,
      command: arrival.command,
      query: arrival.query,
      body,
      accounts: accountsNamed(body),
      errorCode: reply.errorCode,
      httpStatus: reply.status,
    });
    if (this.calls.length > this.maxRecordedCalls) this.calls.splice(0, Math.ceil(this.maxRecordedCalls / 2));
    const latency = this.latencyMs + (this.latencyByCommand.get(arrival.command) ?? 0);
    this.send(res, reply, latency + (fault?.hangMs ?? 0));
  }

  /** The service's own answer, checks in its order. `raw` is null when the body was too large. */
  private serve(arrival: Arrival, raw: Buffer | null, body: unknown): Reply {
    const { known } = arrival;
    if (!known) return this.timReply(TimCode.UNKNOWN_COMMAND, `unknown service or command: ${arrival.path}`);
    if (arrival.method !== 'POST') {
      return this.timReply(TimCode.HTTP_UNREADABLE, `commands take POST, not ${arrival.method}`);
    }
    if (raw === null) return this.timReply(TimCode.HTTP_UNREADABLE, `request body over ${MAX_BODY_BYTES} bytes`);
    const refusal = this.gate.check(arrival.query, arrival.at);
    if (refusal) return this.timReply(refusal.code, refusal.info);
    if (body === undefined) return this.timReply(TimCode.JSON_PARSE_FAILED, 'request body is empty or not JSON');
    if (!arrival.withinRate) {
      return this.timReply(
        TimCode.RATE_LIMITED,
        `${known} called more than ${this.limiter.maxCalls} times in one second`,
      );
    }
    if (known === 'im_push') {
      const pushed = this.pushes.run(body, arrival.at, {
        isNamed: (name) => this.attributes.isNamed(name),
        accountsMatching: (condition) => this.accountsMatching(condition),
      });
      return isRefusal(pushed) ? this.timReply(pushed.code, pushed.info) : this.timReply(0, '', pushed);
    }
    const result = isAttrCommand(known)
      ? runAttrCommand(known, body, {
          attributes: this.attributes,
          exists: (account) => !this.strictAccounts || this.store.has(account) || this.attributes.has(account),
        })
      : runTagCommand(known, body, {
          store: this.store,
          emptyTags: this.emptyTags,
          strictAccounts: this.strictAccounts,
        });
    return isRefusal(result) ? this.timReply(result.code, result.info) : this.timReply(0, '', result);
  }

  /** The reply a fault forces, or null when it only delays a normal answer. */
  private faultReply(fault: Fault): Reply | null {
    if (fault.httpStatus !== undefined) {
      const text = `${fault.httpStatus} ${STATUS_CODES[fault.httpStatus] ?? 'Injected Fault'}`;
      return { status: fault.httpStatus, contentType: 'text/plain; charset=utf-8', text, errorCode: -1 };
    }
    if (fault.garbage) return { status: 200, contentType: 'text/html', text: GARBAGE_BODY, errorCode: -1 };
    if (fault.errorCode !== undefined) {
      return this.timReply(fault.errorCode, fault.errorInfo ?? `injected fault: ErrorCode ${fault.errorCode}`);
    }
    return null;
  }

  private timReply(code: number, info: string, served?: Served | AttrServed | { TaskId: string }): Reply {
    const answer = {
      ActionStatus: code === 0 ? 'OK' : 'FAIL',
      ErrorCode: code,
      ErrorInfo: info,
      RequestId: `${this.requestIdPrefix}-${(++this.requestCount).toString(36)}`,
      ...served,
    };
    return { status: 200, contentType: JSON_TYPE, text: JSON.stringify(answer), errorCode: code };
  }

  private send(res: ServerResponse, reply: Reply, delayMs: number): void {
    const write = (): void => {
      if (res.destroyed) return;
      res.writeHead(reply.status, {
        'content-type': reply.contentType,
        'content-length': Buffer.byteLength(reply.text),
      });
      res.end(reply.text);
    };
    if (delayMs <= 0) return write();
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      write();
    }, delayMs);
    this.delayed.add(timer);
  }
}

function optionsProblem(opts: EmulatorOptions): string | null {
  if (!Number.isInteger(opts.sdkappid) || opts.sdkappid <= 0)
    return `sdkappid must be a positive integer, got ${opts.sdkappid}`;
  if (typeof opts.secretKey !== 'string' || opts.secretKey === '') return 'secretKey must be a non-empty string';
  const admin = accountProblem(opts.adminIdentifier ?? '');
  if (admin) return `adminIdentifier ${JSON.stringify(opts.adminIdentifier)} ${admin}`;
  const max = opts.maxCallsPerSecond;
  if (max !== undefined && !(Number.isInteger(max) && max >= 1))
    return `maxCallsPerSecond must be an integer >= 1, got ${max}`;
  const latency = opts.latencyMs;
  if (latency !== undefined && !(latency >= 0)) return `latencyMs must be >= 0, got ${latency}`;
  const port = opts.port;
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65535))
    return `port must be 0 to 65535, got ${port}`;
  return null;
}

function splitTarget(target: string): { path: string; query: Record<string, string> } {
  const q = target.indexOf('?');
  if (q < 0) return { path: target, query: {} };
  return { path: target.slice(0, q), query: Object.fromEntries(new URLSearchParams(target.slice(q + 1))) };
}

/** Calls back with the whole body, or null when it is over MAX_BODY_BYTES (the rest is drained). */
function readBody(req: IncomingMessage, done: (raw: Buffer | null) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk);
  });
  req.on('end', () => done(size > MAX_BODY_BYTES ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
  // An aborted request has no one left to answer.
  req.on('error', () => {});
}

function parseJson(raw: Buffer): unknown {
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The accounts a body names, read leniently: records describe bad calls too. */
function accountsNamed(body: unknown): string[] {
  if (typeof body !== 'object' || body === null) return [];
  const { To_Account, UserTags, UserAttrs } = body as { To_Account?: unknown; UserTags?: unknown; UserAttrs?: unknown };
  if (Array.isArray(To_Account)) return To_Account.filter((a): a is string => typeof a === 'string');
  const entries = Array.isArray(UserTags) ? UserTags : UserAttrs;
  if (!Array.isArray(entries)) return [];
  return entries.flatMap((entry: unknown) => {
    const account =
      typeof entry === 'object' && entry !== null ? (entry as { To_Account?: unknown }).To_Account : undefined;
    return typeof account === 'string' ? [account] : [];
  });
}
