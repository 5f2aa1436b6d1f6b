/**
 * The plain GraphQL request, answered without yoga's HTTP pipeline: a POST of JSON to /graphql
 * with a document and its variables, and an Accept that yoga would answer with JSON. That is
 * nearly every request a client sends, and yoga's per-request HTTP work (a fetch Request and
 * Response around node's, the body read as a stream, a dozen hook lists walked through promise
 * helpers) cost about as much CPU as everything the gateway does for a single-user lookup.
 *
 * What runs is the same: the document goes through yoga's own `handleParams` (its envelop:
 * parse and validation caches, armor's limits, authorisation, list bounds, graphql-jit, error
 * masking, the phase metrics), or, for a query that has been through it before, only what its
 * hooks would do (src/prepared.ts); the answer is yoga's own `processRegularResult` (or, for data
 * without errors, what it would write), and every hook of ours that works at the HTTP level is
 * called here by name: the caller's token (auth), the request id, the request's metrics and log
 * line, its span (tracing), yoga's `graphql_yoga_http_duration`. Anything else (GET, another content type or Accept, a body with
 * `extensions` or other keys, batching, JSON that does not parse, a cross-origin request when
 * CORS is on) goes to yoga whole, with the body already read handed over as it came.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ExecutionResult } from 'graphql';
import { processRegularResult, type GraphQLParams, type YogaServerInstance } from 'graphql-yoga';
import type { Auth } from './plugins/auth.js';
import type { PreparedRunner } from './prepared.js';
import type { RequestObserver } from './plugins/metrics.js';
import type { RequestTracing } from './plugins/tracing.js';
import { writeErrorResponse } from './plugins/error-codes.js';
import { jsonObjectOf } from './json.js';
import { memoized } from './memo.js';
import { assignRequestId, requestId, requestIdFrom } from './plugins/request-id.js';
import type { YogaMetrics } from './plugins/yoga-metrics.js';
import type { GatewayContext } from './schema/context.js';

export interface FastPathOptions {
  yoga: YogaServerInstance<Record<string, unknown>, GatewayContext>;
  graphqlEndpoint: string;
  maxBodyBytes: number;
  auth: Auth;
  observer: RequestObserver;
  /** Yoga's Prometheus plugin, whose `graphql_yoga_http_duration` this path observes as its HTTP hooks do. */
  yogaMetrics: YogaMetrics;
  /** With CORS_ORIGINS set, a request with an Origin is yoga's: it answers the CORS headers. */
  corsOn: boolean;
  /** The request's span (off: no-ops), started, given its outcome and ended as the tracing plugin's HTTP hooks do. */
  tracing: RequestTracing;
  /** Runs the queries that ran before without yoga's pipeline; null sends every request through it. */
  prepared: PreparedRunner | null;
}

/** The media types yoga answers plain results in, in the order its result processor tries them. */
const REGULAR_TYPES = ['application/graphql-response+json', 'application/json'] as const;
type RegularType = (typeof REGULAR_TYPES)[number];
/** Accept and content type headers kept with what yoga makes of each; bounded, since clients choose them. */
const MAX_ACCEPTS = 64;
const PARAM_KEYS = new Set(['query', 'variables', 'operationName']);
/** The content types yoga parses as JSON, matched as it matches them: the first of a list, exactly, or with parameters. */
const JSON_TYPES = ['application/json', 'application/graphql+json'];
const CONTENT_LENGTH = /^\d+$/;

export class FastPath {
  /** Requests this path answered itself (not handed over to yoga). */
  answered = 0;
  /** What yoga answers each Accept header seen with (see mediaTypeOf). */
  private readonly mediaTypeFor = memoized(mediaTypeOf, MAX_ACCEPTS);
  /** Whether yoga parses a body of each content type seen as JSON: known types are looked up, not split again. */
  private readonly isJsonType = memoized(isJsonType, MAX_ACCEPTS);
  private readonly Request: typeof Request;
  /** Work a plugin leaves running past the answer: only its failure is worth a line. */
  private readonly waitUntil = (work: Promise<unknown> | unknown) =>
    void Promise.resolve(work).catch((err: unknown) => this.opts.yoga.logger.error(err));

  constructor(private readonly opts: FastPathOptions) {
    this.Request = opts.yoga.fetchAPI.Request;
  }

  /** Takes the request when it is a plain one (and then answers it); false leaves it to yoga untouched. */
  take(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'POST' || req.url !== this.opts.graphqlEndpoint) return false;
    const { headers } = req;
    const type = headers['content-type'];
    const length = headers['content-length'];
    if (type === undefined || !this.isJsonType(type)) return false;
    // A chunked body, or one over the limit: yoga's, for its 413 and its counting.
    if (length === undefined || headers['transfer-encoding'] !== undefined || !CONTENT_LENGTH.test(length))
      return false;
    if (Number(length) > this.opts.maxBodyBytes) return false;
    if (this.opts.corsOn && headers.origin !== undefined) return false;
    const mediaType = this.mediaTypeFor(headers.accept ?? '');
    if (!mediaType) return false;
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = chunks.length === 1 ? chunks[0]!.toString() : Buffer.concat(chunks).toString();
      this.answer(req, res, body, mediaType).catch((err: unknown) => this.failed(req, res, err));
    });
    return true;
  }

  private async answer(req: IncomingMessage, res: ServerResponse, body: string, mediaType: RegularType) {
    const url = `http://${req.headers.host ?? 'localhost'}${req.url}`;
    const params = plainParams(body);
    if (!params) {
      await this.handOver(
        req,
        res,
        new this.Request(url, { method: 'POST', headers: req.headers as HeadersInit, body }),
      );
      return;
    }
    this.answered++;
    const started = Date.now();
    const request = new this.Request(url, { method: 'POST', headers: req.headers as HeadersInit });
    assignRequestId(request, req.headers['x-request-id']);
    const { yoga, auth, observer, tracing } = this.opts;
    observer.started(request);
    tracing.started(request);
    // The span ends with the answer, or as a 500 when something here threw (failed() then answers it).
    let status = 500;
    try {
      let result: ExecutionResult & { stringify?: (result: unknown) => string };
      try {
        const checking = auth.authenticate(request);
        if (checking) await checking;
        observer.named(request, params.operationName);
        // What yoga's node adapter and its handler put in a request's context.
        const context = { req, res, waitUntil: this.waitUntil, request, params };
        // A query that ran before runs without yoga's pipeline (src/prepared.ts), unless that would refuse it.
        const { prepared } = this.opts;
        const kept = prepared?.find(params);
        result =
          (prepared && kept ? await prepared.run(kept, context) : null) ??
          ((await yoga.handleParams({ request, context, params })) as ExecutionResult);
      } catch (err) {
        // Only the token check throws (UNAUTHENTICATED: handleParams and a prepared run answer their errors); yoga
        // answers what it throws as this.
        result = { errors: [err as never] };
      }
      observer.resulted(request, result);
      tracing.resulted(request, result);
      let contentType: string | null;
      if (isPlainData(result)) {
        // What yoga's result processor answers it with, written without its Response around it.
        status = 200;
        contentType = `${mediaType}; charset=utf-8`;
        write(res, status, contentType, (result.stringify ?? JSON.stringify)(result), requestId(request));
      } else {
        const response = processRegularResult(result, yoga.fetchAPI, mediaType);
        await send(res, response, requestId(request));
        status = response.status;
        contentType = response.headers.get('content-type');
      }
      const seen = observer.answered(request, status, contentType);
      if (seen?.operationType)
        this.opts.yogaMetrics.observeHttp('POST', status, seen.operationType, (Date.now() - started) / 1000);
    } finally {
      tracing.answered(request, status);
    }
  }

  /** Yoga answers a request whose body this path has read but does not take. */
  private async handOver(req: IncomingMessage, res: ServerResponse, request: Request) {
    await send(res, await this.opts.yoga.handleRequest(request, { req, res }));
  }

  /** What is left when something here threw: a coded 500, never a stack. */
  private failed(req: IncomingMessage, res: ServerResponse, err: unknown) {
    this.opts.yoga.logger.error('fast path:', err);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = JSON.stringify({
      errors: [{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }],
    });
    writeErrorResponse(res, 500, body, { 'x-request-id': requestIdFrom(req.headers['x-request-id']) });
  }
}

/**
 * Writes a JSON answer of yoga's to node's response, unless it has been answered already (past its
 * deadline the backstop, plugins/deadline.ts, has); `requestId` when yoga's own hook did not add it.
 */
async function send(res: ServerResponse, response: Response, requestId?: string): Promise<void> {
  const text = await response.text();
  if (res.writableEnded) return;
  const headers: Record<string, string> = {};
  response.headers.forEach((value, key) => (headers[key] = value));
  headers['content-length'] = String(Buffer.byteLength(text));
  if (requestId) headers['x-request-id'] = requestId;
  res.writeHead(response.status, headers);
  res.end(text);
}

/** The same for a JSON text known to need nothing of a Response: its status, type and body. */
function write(res: ServerResponse, status: number, contentType: string, text: string, requestId: string): void {
  if (res.writableEnded) return;
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': String(Buffer.byteLength(text)),
    'x-request-id': requestId,
  });
  res.end(text);
}

/**
 * A result with data and neither errors nor extensions: yoga's result processor answers it 200 with
 * its JSON (graphql-jit's stringifier when it ran), whichever of the two types was accepted.
 */
function isPlainData(result: ExecutionResult): boolean {
  return !(Symbol.asyncIterator in result) && !result.errors?.length && result.extensions == null;
}

/**
 * The media type yoga's result processors choose for an Accept header (empty: none sent), when it
 * is a plain JSON one; null when yoga would stream (SSE, multipart) or refuse it. Yoga tries each
 * processor for each accepted type, the client's last first, and the last match wins: its regular
 * processor comes last, so it wins whenever one of its two types matches.
 */
function mediaTypeOf(accept: string): RegularType | null {
  let known: RegularType | null = null;
  const asked = (accept || '*/*').replace(/\s/g, '').toLowerCase().split(',');
  for (const entry of asked.reverse()) {
    const [mediaType, ...rest] = entry.split(';');
    const charset = rest.find((param) => param.includes('charset=')) ?? 'charset=utf-8';
    if (mediaType === undefined || charset !== 'charset=utf-8') continue;
    for (const type of REGULAR_TYPES) if (matches(type, mediaType)) known = type;
  }
  return known;
}

function isJsonType(header: string): boolean {
  const first = header.split(',')[0]!;
  return JSON_TYPES.some((type) => first === type || first.startsWith(`${type};`));
}

function matches(type: string, asked: string): boolean {
  const [pre, suf] = type.split('/');
  const [askedPre, askedSuf] = asked.split('/');
  return (askedPre === '*' || askedPre === pre) && (askedSuf === '*' || askedSuf === suf);
}

/** The request's parameters when the body is exactly what yoga's JSON parser and parameter check let through. */
function plainParams(body: string): GraphQLParams | null {
  const params = jsonObjectOf(body);
  if (!params) return null;
  for (const key in params) if (!PARAM_KEYS.has(key)) return null;
  const { query, variables, operationName } = params;
  if (typeof query !== 'string') return null;
  if (variables != null && (typeof variables !== 'object' || Array.isArray(variables))) return null;
  if (operationName != null && typeof operationName !== 'string') return null;
  return params as GraphQLParams;
}
