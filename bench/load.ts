/**
 * One load run: autocannon against the gateways, with every response read
 * just enough to tell success from failure. The load generator shares its
 * process with this reading, so it never parses JSON: it looks for the
 * `"errors"` key and counts `"tags":[` (a user whose lookup succeeded) and
 * `"attributes":[` (the same for attributes); JSON
 * escapes every quote inside a tag or message, so neither can appear by chance.
 */
import autocannon from 'autocannon';

export interface LoadSpec {
  urls: string[];
  connections: number;
  durationS: number;
  /** The GraphQL request body (JSON text), a new one per request when ids are random. */
  body(): string;
  /** Whether body() changes from request to request. */
  varies: boolean;
  /** A fixed rate over all connections (autocannon's overallRate); default as fast as the server answers. */
  requestsPerSecond?: number;
  /** Request headers besides the JSON content type and Accept (a bearer token, say). */
  headers?: Record<string, string>;
}

export interface LoadResult {
  durationS: number;
  /** Epoch ms when the load started and stopped. */
  startedAt: number;
  finishedAt: number;
  responses: number;
  /** Responses with status 200 and no `errors`. */
  okResponses: number;
  /** Users answered with a tag list, in any response. */
  okLookups: number;
  /** Users answered with both a tag list and an attribute list (per response, the fewer of the two counts). */
  okBothLookups: number;
  p50Ms: number;
  p99Ms: number;
  /** Error codes from response bodies (`RATE_LIMITED`, ...), `HTTP nnn`, and socket errors and timeouts. */
  errors: Record<string, number>;
}

const HEADERS = { 'content-type': 'application/json', accept: 'application/json' };
const ERROR_CODE = /"code":"([A-Z_]+)"/g;

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const counts = { responses: 0, okResponses: 0, okLookups: 0, okBothLookups: 0 };
  const errors: Record<string, number> = {};
  const note = (what: string, n = 1) => void (errors[what] = (errors[what] ?? 0) + n);

  const onResponse = (status: number, body: string): void => {
    counts.responses++;
    if (status !== 200) return note(`HTTP ${status}`);
    const tags = occurrences(body, '"tags":[');
    counts.okLookups += tags;
    if (tags > 0) counts.okBothLookups += Math.min(tags, occurrences(body, '"attributes":['));
    if (!body.includes('"errors"')) {
      counts.okResponses++;
      return;
    }
    for (const m of body.matchAll(ERROR_CODE)) note(m[1]!);
  };

  const request: autocannon.Request = {
    method: 'POST',
    path: '/graphql',
    headers: { ...HEADERS, ...spec.headers },
    body: spec.body(),
    onResponse,
  };
  if (spec.varies) {
    request.setupRequest = (req) => {
      req.body = spec.body();
      return req;
    };
  }

  const result = await autocannon({
    url: spec.urls,
    connections: spec.connections,
    duration: spec.durationS,
    timeout: 30,
    ...(spec.requestsPerSecond ? { overallRate: spec.requestsPerSecond } : {}),
    requests: [request],
  });
  if (result.errors > result.timeouts) note('socket errors', result.errors - result.timeouts);
  if (result.timeouts > 0) note('timeouts', result.timeouts);
  return {
    durationS: (result.finish.getTime() - result.start.getTime()) / 1000,
    startedAt: result.start.getTime(),
    finishedAt: result.finish.getTime(),
    ...counts,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors,
  };
}

function occurrences(text: string, needle: string): number {
  let n = 0;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) n++;
  return n;
}
