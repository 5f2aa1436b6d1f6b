/**
 * The only reader of the environment: a zod schema turns it into one typed
 * Config, or into one line that names the variable and what is wrong with it.
 */
import { z } from 'zod';
import { accountProblem } from './tim/wire.js';

export const REGION_DOMAINS = {
  china: 'console.tim.qq.com',
  singapore: 'adminapisgp.im.qcloud.com',
  seoul: 'adminapikr.im.qcloud.com',
  tokyo: 'adminapijpn.im.qcloud.com',
  frankfurt: 'adminapiger.im.qcloud.com',
  mumbai: 'adminapiind.im.qcloud.com',
  'silicon-valley': 'adminapiusa.im.qcloud.com',
  jakarta: 'adminapiidn.im.qcloud.com',
} as const;

/** The credentials the embedded emulator is started with when none are given. */
export const EMULATOR_SDKAPPID = 1400000000;

export type AuthMode = 'none' | 'jwt';

export interface Config {
  port: number;
  host: string;
  tim: {
    /** `emulator`: no credentials were given, so the gateway runs the embedded emulator. */
    mode: 'emulator' | 'remote';
    sdkappid: number;
    secretKey: string;
    adminIdentifier: string;
    /** Upstream origin; for the emulator, filled in once it listens. */
    baseUrl: string;
    timeoutMs: number;
  };
  maxQps: number;
  /** How long one GraphQL request may wait for upstream answers, retries included. */
  requestTimeoutMs: number;
  redisUrl: string | undefined;
  replicas: number;
  cacheTtlMs: number;
  maxIdsPerRequest: number;
  auth: {
    mode: AuthMode;
    jwtSecret: string | undefined;
    jwksUrl: string | undefined;
    issuer: string | undefined;
    audience: string | undefined;
  };
  corsOrigins: string[];
  graphiql: boolean;
  introspection: boolean;
  /** `Host` names (lower case, no port) the gateway answers; `any` when HOST is a wildcard and ALLOWED_HOSTS is unset. */
  allowedHosts: string[] | 'any';
  /** Node's HTTP server limits against slow or greedy clients. */
  http: {
    headersTimeoutMs: number;
    /** The whole request, headers and body, must arrive within this. */
    bodyTimeoutMs: number;
    keepAliveTimeoutMs: number;
    maxConnections: number;
  };
  /** When new requests are refused with 503 OVERLOADED rather than queued. */
  overload: {
    /** Event-loop lag at which heavy requests are shed (all of them at twice it); 0 turns lag shedding off. */
    lagMs: number;
    /** Requests served at once; heavy ones may take only half of it. */
    maxInFlight: number;
  };
  logLevel: string;
  /** Also serve the Apollo Federation v2 subgraph (`_service`, `_entities`). */
  federation: boolean;
  /** OpenTelemetry trace export; off (no SDK at all) when `endpoint` is null. */
  tracing: { endpoint: string | null; serviceName: string };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Plain decimal digits, `min` to `max`: Number() would also read "0x10", "1e3" and " 80". */
const wholeNumber = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number (decimal digits only)')
    .transform(Number)
    .pipe(z.number().min(min).max(max));
/** Past 2^31 - 1 ms Node fires a timer at once; no wait here needs more than two minutes. */
const MAX_WAIT_MS = 120_000;
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v));
const url = z.url({ protocol: /^https?$/ }).transform((u) => u.replace(/\/+$/, ''));
/** Names that always mean this machine: plain HTTP to them never leaves it. */
export function isLoopback(hostname: string): boolean {
  const name = hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  return name === 'localhost' || name.endsWith('.localhost') || /^127(?:\.\d{1,3}){3}$/.test(name) || name === '::1';
}
/** A URL that carries a secret (the usersig, or the keys that sign tokens) must be https, except to this machine. */
const httpsOnly = (u: string, ctx: z.RefinementCtx) => {
  if (!URL.canParse(u)) return;
  const { protocol, hostname } = new URL(u);
  if (protocol !== 'https:' && !isLoopback(hostname))
    ctx.addIssue({
      code: 'custom',
      message: 'must be https:// (plain http:// only to a loopback address such as 127.0.0.1)',
    });
};
/** The client appends `/v4/...` to it, so a query, fragment or credentials would break every call. */
const origin = z
  .url({ protocol: /^https?$/ })
  .superRefine((u, ctx) => {
    // Refinements run even after z.url() has refused the value.
    if (!URL.canParse(u)) return;
    const { search, hash, username, password } = new URL(u);
    if (search || hash || username || password)
      ctx.addIssue({
        code: 'custom',
        message: 'must be scheme://host[:port][/path], with no query, fragment or credentials',
      });
  })
  .superRefine(httpsOnly)
  .transform((u) => u.replace(/\/+$/, ''));
/** A name, an IPv4 address, or an IPv6 address (unbracketed, as listen() takes it, with an optional zone). */
const HOSTNAME = /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.?|[\dA-Fa-f.]*:[\dA-Fa-f:.]*(?:%[\w.-]+)?)$/;

/** Each variable's schema; unset variables are `undefined` and take defaults below. */
const env = z.object({
  PORT: wholeNumber(0, 65535).optional(),
  HOST: z
    .string()
    .regex(HOSTNAME, 'must be a host name or an IP address, such as 127.0.0.1, 0.0.0.0 or ::1')
    .optional(),
  TIM_SDKAPPID: wholeNumber(1).optional(),
  TIM_SECRET_KEY: z.string().min(1).optional(),
  TIM_ADMIN_IDENTIFIER: z
    .string()
    .superRefine((id, ctx) => {
      const problem = accountProblem(id);
      if (problem)
        ctx.addIssue({ code: 'custom', message: `${problem} (a TIM UserID is 1 to 32 bytes of printable ASCII)` });
    })
    .optional(),
  TIM_BASE_URL: origin.optional(),
  TIM_REGION: z.enum(Object.keys(REGION_DOMAINS) as [keyof typeof REGION_DOMAINS]).optional(),
  TIM_MAX_QPS: wholeNumber(1, 100_000).optional(),
  TIM_TIMEOUT_MS: wholeNumber(1, MAX_WAIT_MS).optional(),
  // Below a second every lookup would fail: a call needs time to be paced, sent and answered.
  REQUEST_TIMEOUT_MS: wholeNumber(1000, MAX_WAIT_MS).optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must start with redis:// or rediss://')
    .optional(),
  TAGS_CACHE_TTL_MS: wholeNumber(0).optional(),
  MAX_IDS_PER_REQUEST: wholeNumber(1).optional(),
  AUTH_MODE: z.enum(['none', 'jwt']).optional(),
  JWT_SECRET: z.string().min(32, 'must be at least 32 characters for HS256').optional(),
  JWT_JWKS_URL: url.superRefine(httpsOnly).optional(),
  // The standard OpenTelemetry variables: the collector's base URL (traces go to its /v1/traces) and our name there.
  OTEL_EXPORTER_OTLP_ENDPOINT: url.optional(),
  OTEL_SERVICE_NAME: z.string().min(1).max(200).optional(),
  JWT_ISSUER: z.string().min(1).optional(),
  JWT_AUDIENCE: z.string().min(1).optional(),
  GATEWAY_REPLICAS: wholeNumber(1).optional(),
  CORS_ORIGINS: z
    .string()
    .superRefine((list, ctx) => {
      // A browser's Origin header is exactly scheme://host[:port]: anything else ("*", a trailing slash) never matches.
      const bad = list
        .split(',')
        .map((o) => o.trim())
        .find((o) => o && !(URL.canParse(o) && new URL(o).origin === o));
      if (bad !== undefined)
        ctx.addIssue({
          code: 'custom',
          message: `${JSON.stringify(bad)} is not an origin: list each as scheme://host[:port], with no path or trailing slash`,
        });
    })
    .optional(),
  GRAPHIQL: bool.optional(),
  GRAPHQL_INTROSPECTION: bool.optional(),
  ALLOWED_HOSTS: z
    .string()
    .superRefine((list, ctx) => {
      const bad = hostList(list).find((h) => h !== '*' && !HOSTNAME.test(h.replace(/^\[(.*)\]$/, '$1')));
      if (bad !== undefined)
        ctx.addIssue({
          code: 'custom',
          message: `${JSON.stringify(bad.slice(0, 64))} is not a host name: list names or addresses, without port or scheme, or *`,
        });
    })
    .optional(),
  HTTP_HEADERS_TIMEOUT_MS: wholeNumber(100, MAX_WAIT_MS).optional(),
  HTTP_BODY_TIMEOUT_MS: wholeNumber(100, MAX_WAIT_MS).optional(),
  HTTP_KEEP_ALIVE_TIMEOUT_MS: wholeNumber(100, MAX_WAIT_MS).optional(),
  HTTP_MAX_CONNECTIONS: wholeNumber(1).optional(),
  OVERLOAD_EVENT_LOOP_LAG_MS: wholeNumber(0, MAX_WAIT_MS).optional(),
  OVERLOAD_MAX_IN_FLIGHT: wholeNumber(2).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  FEDERATION: bool.optional(),
});

/** Reads a Config from an environment; throws a ConfigError with one line on any problem. */
export function loadConfig(source: Record<string, string | undefined>): Config {
  const raw = Object.fromEntries(
    Object.keys(env.shape).map((k) => [k, source[k] === undefined || source[k] === '' ? undefined : source[k]]),
  );
  const parsed = env.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0]);
    // Never echo a secret's value back, even when it is malformed.
    throw new ConfigError(`${name}: ${issue.message}`);
  }
  const e = parsed.data;

  const hasId = e.TIM_SDKAPPID !== undefined;
  const hasKey = e.TIM_SECRET_KEY !== undefined;
  if (hasId !== hasKey) {
    const missing = hasId ? 'TIM_SECRET_KEY' : 'TIM_SDKAPPID';
    const given = hasId ? 'TIM_SDKAPPID' : 'TIM_SECRET_KEY';
    throw new ConfigError(
      `${missing}: is required when ${given} is set (set both for real TIM, or neither for the emulator)`,
    );
  }
  if (e.TIM_BASE_URL && e.TIM_REGION) {
    throw new ConfigError('TIM_REGION: set either TIM_REGION or TIM_BASE_URL, not both');
  }
  const mode = hasId ? 'remote' : 'emulator';
  const baseUrl = e.TIM_BASE_URL ?? `https://${REGION_DOMAINS[e.TIM_REGION ?? 'china']}`;

  const authMode: AuthMode = e.AUTH_MODE ?? (mode === 'emulator' ? 'none' : 'jwt');
  if (authMode === 'jwt' && !e.JWT_SECRET && !e.JWT_JWKS_URL) {
    const why = e.AUTH_MODE
      ? 'AUTH_MODE=jwt needs it'
      : 'with real TIM credentials the gateway checks JWTs; set it, or set AUTH_MODE=none on purpose';
    throw new ConfigError(`JWT_SECRET: or JWT_JWKS_URL is required: ${why}`);
  }
  if (e.JWT_SECRET && e.JWT_JWKS_URL) {
    throw new ConfigError('JWT_JWKS_URL: set either JWT_SECRET or JWT_JWKS_URL, not both');
  }
  const headersTimeoutMs = e.HTTP_HEADERS_TIMEOUT_MS ?? 5000;
  const bodyTimeoutMs = e.HTTP_BODY_TIMEOUT_MS ?? 10_000;
  if (bodyTimeoutMs < headersTimeoutMs) {
    // The body's time limit counts from the request's first byte, so it covers the headers too.
    throw new ConfigError(
      `HTTP_BODY_TIMEOUT_MS: ${bodyTimeoutMs} is less than HTTP_HEADERS_TIMEOUT_MS (${headersTimeoutMs}); it covers the headers too`,
    );
  }
  const maxQps = e.TIM_MAX_QPS ?? 100;
  if ((e.GATEWAY_REPLICAS ?? 1) > maxQps) {
    // Each process's fallback share, TIM_MAX_QPS / GATEWAY_REPLICAS, must be at least one call a second.
    throw new ConfigError(
      `GATEWAY_REPLICAS: ${e.GATEWAY_REPLICAS} processes cannot share TIM_MAX_QPS=${maxQps} calls per second`,
    );
  }

  return {
    port: e.PORT ?? 4000,
    host: e.HOST ?? '127.0.0.1',
    tim: {
      mode,
      sdkappid: e.TIM_SDKAPPID ?? EMULATOR_SDKAPPID,
      // In emulator mode a key is made per process: nothing outside it can sign for it.
      secretKey: e.TIM_SECRET_KEY ?? '',
      adminIdentifier: e.TIM_ADMIN_IDENTIFIER ?? 'administrator',
      baseUrl,
      timeoutMs: e.TIM_TIMEOUT_MS ?? 5000,
    },
    maxQps,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS ?? 10_000,
    redisUrl: e.REDIS_URL,
    replicas: e.GATEWAY_REPLICAS ?? 1,
    cacheTtlMs: e.TAGS_CACHE_TTL_MS ?? 0,
    maxIdsPerRequest: e.MAX_IDS_PER_REQUEST ?? 1000,
    auth: {
      mode: authMode,
      jwtSecret: e.JWT_SECRET,
      jwksUrl: e.JWT_JWKS_URL,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
    },
    corsOrigins: (e.CORS_ORIGINS ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    graphiql: e.GRAPHIQL ?? mode === 'emulator',
    // With real credentials the schema is not for strangers; with the emulator it is the developer's own.
    introspection: e.GRAPHQL_INTROSPECTION ?? mode === 'emulator',
    allowedHosts: allowedHostsOf(e.HOST ?? '127.0.0.1', e.ALLOWED_HOSTS),
    http: {
      headersTimeoutMs,
      bodyTimeoutMs,
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT_MS ?? 5000,
      maxConnections: e.HTTP_MAX_CONNECTIONS ?? 1024,
    },
    overload: {
      lagMs: e.OVERLOAD_EVENT_LOOP_LAG_MS ?? 500,
      maxInFlight: e.OVERLOAD_MAX_IN_FLIGHT ?? 512,
    },
    logLevel: e.LOG_LEVEL ?? 'info',
    federation: e.FEDERATION ?? false,
    tracing: {
      endpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT ?? null,
      serviceName: e.OTEL_SERVICE_NAME ?? 'tim-tags-graphql',
    },
  };
}

function hostList(list: string): string[] {
  return list
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter(Boolean);
}

/** Addresses that mean "every interface": the Host a client sends then names the machine, not HOST. */
export const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);

/**
 * The Host names a request may carry: the loopback names, HOST itself, and ALLOWED_HOSTS. With a
 * wildcard HOST the names clients use (a load balancer's, a pod's address) cannot be guessed, so
 * with no ALLOWED_HOSTS any Host is answered (server.ts logs a warning); `*` says so on purpose.
 */
function allowedHostsOf(host: string, list: string | undefined): string[] | 'any' {
  const listed = hostList(list ?? '');
  if (listed.includes('*') || (listed.length === 0 && WILDCARD_HOSTS.has(host))) return 'any';
  const own = WILDCARD_HOSTS.has(host) ? [] : [host.includes(':') ? `[${host.toLowerCase()}]` : host.toLowerCase()];
  const bracketed = listed.map((h) => (h.includes(':') && !h.startsWith('[') ? `[${h}]` : h));
  return [...new Set(['localhost', '127.0.0.1', '[::1]', ...own, ...bracketed])];
}
