/**
 * Builds one gateway from a Config: the upstream services (emulator when no
 * credentials are given), the yoga app with its plugins, and the HTTP server.
 * Nothing here is module-level state, so a test can run two gateways at once.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { TimEmulator } from './emulator/index.js';
import { graphiqlOptions, offlineGraphiQLRenderer } from './graphiql.js';
import { admitHost } from './host-check.js';
import { FastPath } from './fast-path.js';
import { PreparedQueries, PreparedRunner, type Masking } from './prepared.js';
import { admitRequest, answerClientErrors } from './http-edges.js';
import { createLogger } from './logger.js';
import { GatewayMetrics } from './metrics.js';
import { createAuth } from './plugins/auth.js';
import { DEADLINE_MARGIN_MS, useDeadlineBackstop } from './plugins/deadline.js';
import { useCodedHttpErrors, useInputErrorCodes } from './plugins/error-codes.js';
import { useHealth } from './plugins/health.js';
import { useDocumentCache } from './plugins/document-cache.js';
import { foldPlugins } from './plugins/fold.js';
import { limitPlugins, listBoundsFor, MAX_BODY_BYTES, useBodySizeLimit } from './plugins/limits.js';
import { useListBounds } from './plugins/list-bounds.js';
import { RequestObserver, useMetrics } from './plugins/metrics.js';
import { LoadShedder } from './overload.js';
import { createPersistedQueries } from './plugins/persisted-queries.js';
import { useRequestId } from './plugins/request-id.js';
import { useTracing } from './plugins/tracing.js';
import { useYogaMetrics } from './plugins/yoga-metrics.js';
import { corsFor, useCsrfPrevention } from './plugins/security.js';
import { schema, subgraphSchema } from './schema/index.js';
import { createContext, type GatewayContext, type Services } from './schema/context.js';
import { TimClient } from './tim/client.js';
import { AdminSigner } from './tim/usersig.js';
import type { Attrs } from './tim/wire.js';
import { localBudgets, redisBudgets, type Budgets } from './upstream/budgets.js';
import { MemoryAccountCache, type AccountCache } from './upstream/cache.js';
import { Circuit, type CircuitOptions } from './upstream/circuit.js';
import { ATTRS_KIND, RedisAccountCache, TAGS_KIND } from './upstream/redis-cache.js';
import { Upstream } from './upstream/upstream.js';
import { PushSender } from './upstream/push.js';
import { LocalPushPacer, RedisPushPacer, type PushPacer } from './upstream/push-pacer.js';
import { MemoryPushRecords, RedisPushRecords, type PushRecords } from './upstream/push-records.js';
import { createTracing, type Tracing } from './tracing.js';

export interface GatewayOptions {
  logger?: Logger;
  /** Per-request coalescing across requests (on by default; the bench turns it off for its baseline). */
  coalesce?: boolean;
  /** The upstream circuit breaker's threshold and cooldown (tests shorten them). */
  circuit?: CircuitOptions;
  /** Plain POSTs answered without yoga's HTTP pipeline (src/fast-path.ts); on by default, off to compare. */
  fastPath?: boolean;
}

export interface Gateway {
  /** `http://host:port` the gateway listens on. */
  url: string;
  config: Config;
  services: Services;
  client: TimClient;
  logger: Logger;
  /** This gateway's own Prometheus registry, served at /metrics. */
  metrics: GatewayMetrics;
  /** This gateway's own tracer provider (off without OTEL_EXPORTER_OTLP_ENDPOINT). */
  tracing: Tracing;
  /** The embedded emulator, when the gateway runs without credentials. */
  emulator: TimEmulator | null;
  server: Server;
  /** The path that answers plain POSTs without yoga's HTTP pipeline; null when it is off. */
  fastPath: FastPath | null;
  /** Runs queries that ran before without yoga's pipeline, for the fast path (null without it). */
  prepared: PreparedRunner | null;
  /** The yoga server behind both paths (its final plugin list is what a request's phases run through). */
  yoga: YogaServerInstance<Record<string, unknown>, GatewayContext>;
  /** Stops taking requests, finishes those in flight, then releases everything. */
  close(): Promise<void>;
}

export async function startGateway(config: Config, opts: GatewayOptions = {}): Promise<Gateway> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const { tim, emulator } = await upstreamOf(config, logger);

  const signer = new AdminSigner({ sdkappid: tim.sdkappid, identifier: tim.adminIdentifier, secretKey: tim.secretKey });
  const client = new TimClient({ baseUrl: tim.baseUrl, sdkappid: tim.sdkappid, signer, timeoutMs: tim.timeoutMs });
  const metrics = new GatewayMetrics();
  const tracing = await createTracing(config.tracing);
  client.onCall((call) => logger.debug({ upstream: call }, 'upstream call'));
  client.onCall(metrics.upstreamCall);
  const { budgets, tagCache, attributeCache } = await budgetsAndCachesOf(
    config,
    tim.sdkappid,
    logger,
    emulator !== null,
  );
  const upstream = new Upstream({
    client,
    budgets,
    tagCache,
    attributeCache,
    log: logger,
    coalesce: opts.coalesce ?? true,
    circuit: new Circuit(opts.circuit),
    events: metrics.upstreamEvents,
    tracer: tracing.upstream,
  });
  upstream.circuit.onChange((state) => logger.warn({ circuit: state }, `upstream circuit ${state}`));
  upstream.circuit.onChange(metrics.circuitChanged);
  metrics.watchCircuit(() => upstream.circuit.state);
  const push = new PushSender({
    attempts: upstream.attempts,
    client,
    sdkappid: tim.sdkappid,
    ...(await pushStateOf(config, tim, logger, emulator !== null)),
    attributeNames: upstream.attributeNames,
    log: logger,
  });
  emulator?.pushes.onTask((task) =>
    logger.debug({ taskId: task.taskId, recipients: task.recipients }, 'emulator: push delivered'),
  );
  const services: Services = { config: { ...config, tim }, upstream, push, log: logger };

  const shedder = new LoadShedder(config.overload, (why, refused) =>
    logger.warn({ refused, why }, 'overloaded: refusing new requests with 503'),
  );
  const auth = createAuth(config.auth, logger);
  // With the embedded emulator REDIS_URL is ignored (budgetAndCacheOf says why), persisted queries included.
  const persisted = await createPersistedQueries({
    redisUrl: emulator ? undefined : config.redisUrl,
    keyPrefix: `tim-tags:{${tim.sdkappid}}`,
    log: logger,
  });
  const requestTracing = useTracing(tracing.tracer, '/graphql');
  const yogaMetrics = useYogaMetrics(metrics.registry);
  const observer = new RequestObserver({
    metrics,
    logger,
    graphqlEndpoint: '/graphql',
    traceIdOf: requestTracing.traceIdOf,
  });
  const contextOf = (request: Request) =>
    createContext(services, auth.callerOf(request), requestTracing.spanContextOf(request));
  const gatewayContext: Plugin<GatewayContext> = {
    onContextBuilding: ({ context, extendContext }) => extendContext(contextOf(context.request)),
  };
  const listBounds = useListBounds(listBoundsFor(config.maxIdsPerRequest));
  const deadlineMs = config.requestTimeoutMs + DEADLINE_MARGIN_MS;
  const preparedQueries = new PreparedQueries();
  // Every plugin's context, parse, validate and execute hooks run as one plugin's (plugins/fold.ts), in this
  // order: they pass on nearly every request, and envelop's per-hook walk cost more than they do.
  const plugins: Plugin[] = foldPlugins([
    // The gateway's context, as createYoga's `context` option would add it: before every other plugin's hooks.
    gatewayContext as Plugin,
    useMetrics(observer),
    requestTracing.plugin,
    ...yogaMetrics.plugins,
    useCodedHttpErrors(),
    useRequestId(),
    useHealth({
      problem: () => shedder.problem() ?? (upstream.ready ? null : 'the upstream is failing; calls are paused'),
      details: () => ({ budget: budgets.describe(), cache: tagCache?.describe() ?? 'off' }),
    }),
    // Security, in the order a request meets it: CSRF, then the caller's token (when the request is parsed),
    // then the document's limits, then (before execution) its list bounds and only then who it reads: a list of
    // 31,000 ids is refused before authorisation coerces it.
    useCsrfPrevention(),
    useBodySizeLimit(MAX_BODY_BYTES),
    // A hash-only request gets its document here, before parsing: limits and auth see it like any other.
    persisted.plugin,
    ...limitPlugins({ introspection: config.introspection }),
    listBounds.plugin,
    auth.plugin,
    useInputErrorCodes(),
    useDeadlineBackstop(deadlineMs),
    // Each document is compiled once to a function that runs its selection directly (graphql-jit),
    // instead of being walked field by field for every request: the most of a request's CPU.
    useGraphQlJit({}, { cache: preparedQueries.compiled }) as Plugin,
    // Last of the execute hooks: a query none of them stopped is kept, to run without the pipeline next time.
    preparedQueries.plugin,
    // Yoga's parser and validation cache, in its place: last, after every plugin that adds a rule.
    useDocumentCache(),
  ]);
  const yoga = createYoga<Record<string, unknown>, GatewayContext>({
    schema: config.federation ? subgraphSchema() : schema,
    plugins,
    graphqlEndpoint: '/graphql',
    // Yoga's own health check answers an empty 200 to every URL that *ends with* this string (`/graphql?x=/health`
    // too), even while /readyz says 503. /healthz and /readyz are the gateway's; a parsed URL never ends with a raw
    // space, so this turns yoga's off.
    healthCheckEndpoint: ' ',
    landingPage: false,
    // isDev pinned: left unset, yoga reads NODE_ENV=development as leave to put an error's stack in the answer.
    maskedErrors: { isDev: false },
    cors: corsFor(config.corsOrigins),
    batching: false,
    // plugins/document-cache.ts caches the same, without yoga's per-request key of every rule's name.
    parserAndValidationCache: false,
    // No uploads: a multipart body is refused (415) rather than parsed.
    multipart: false,
    // useBodySizeLimit does yoga's check without its per-request stream pipeline.
    maxRequestBodySize: false,
    graphiql: config.graphiql ? graphiqlOptions(config.auth.mode === 'jwt') : false,
    renderGraphiQL: offlineGraphiQLRenderer(),
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error(args.map(describeLogArg).join(' ')),
    },
  });

  const prepared =
    (opts.fastPath ?? true)
      ? new PreparedRunner({
          queries: preparedQueries,
          schema: config.federation ? subgraphSchema() : schema,
          auth,
          listBounds,
          observer,
          tracing: requestTracing,
          yogaMetrics,
          deadlineMs,
          contextOf,
          masking: yoga['maskedErrorsOpts'] as Masking | null,
        })
      : null;
  const fast =
    (opts.fastPath ?? true)
      ? new FastPath({
          yoga,
          graphqlEndpoint: '/graphql',
          maxBodyBytes: MAX_BODY_BYTES,
          auth,
          observer,
          yogaMetrics,
          corsOn: config.corsOrigins.length > 0,
          tracing: requestTracing,
          prepared,
        })
      : null;
  const allowedHosts = config.allowedHosts === 'any' ? 'any' : new Set(config.allowedHosts);
  const { http } = config;
  const server = createServer(
    {
      // A missing Host is refused by admitRequest, as a coded error with a request id, rather than by node's bare 400.
      requireHostHeader: false,
      // A slow client holds a connection only this long (node checks every connectionsCheckingInterval).
      headersTimeout: http.headersTimeoutMs,
      requestTimeout: http.bodyTimeoutMs,
      keepAliveTimeout: http.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, http.headersTimeoutMs / 4),
    },
    (req, res) => {
      if (!admitRequest(req, res) || !admitHost(req, res, allowedHosts) || !shedder.admit(req, res)) return;
      if (!fast?.take(req, res)) void yoga(req, res);
    },
  );
  server.maxConnections = http.maxConnections;
  answerClientErrors(server);
  const answering = trackAnswers(server);
  const release = async () => {
    shedder.close();
    await budgets.close();
    await tagCache?.close?.();
    await attributeCache?.close?.();
    await persisted.close();
    await push.close();
    client.close();
    await emulator?.close();
    await tracing.shutdown();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
  } catch (err) {
    // Nothing may outlive a gateway that never started (Redis connections, the emulator's port).
    await release();
    throw err;
  }
  warnAboutExposure(config, logger);
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info(
    {
      url: `${url}/graphql`,
      upstream: emulator ? 'emulator' : tim.baseUrl,
      auth: config.auth.mode,
      federation: config.federation,
    },
    'gateway listening',
  );

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      // Upstream work of a request ends by its deadline; one call started just before may take its timeout more.
      await drain(server, answering, config.requestTimeoutMs + tim.timeoutMs);
      await release();
    })());

  return {
    url,
    config: services.config,
    services,
    client,
    logger,
    metrics,
    tracing,
    emulator,
    server,
    fastPath: fast,
    prepared,
    yoga,
    close,
  };
}

/** Settings that are allowed but leave the gateway open: said at every start, so nobody runs them unaware. */
function warnAboutExposure(config: Config, logger: Logger): void {
  if (config.auth.mode === 'none' && config.tim.mode === 'remote')
    logger.warn(
      'AUTH_MODE=none with real TIM credentials: this gateway is an open admin proxy to whoever can reach it ' +
        "(anyone who reaches it can read and change every user's tags); set JWT_SECRET or JWT_JWKS_URL",
    );
  if (config.allowedHosts === 'any')
    logger.warn(
      `HOST=${config.host} with no ALLOWED_HOSTS: any Host header is answered, so nothing stops DNS rebinding; ` +
        'list the names clients use in ALLOWED_HOSTS',
    );
}

/** Responses not yet finished, so that a drain can tell them to close their connection. */
function trackAnswers(server: Server): Set<ServerResponse> {
  const answering = new Set<ServerResponse>();
  // One listener for every response (node calls it on the response): no closure and once-wrapper per request.
  const answered = function (this: ServerResponse) {
    answering.delete(this);
  };
  server.on('request', (_req, res: ServerResponse) => {
    answering.add(res);
    res.on('close', answered);
  });
  return answering;
}

/**
 * Stops taking connections and resolves once every request in flight is answered. `server.close`
 * alone would also wait for idle keep-alive connections to time out, so idle ones are closed now
 * and the answers still to come carry `Connection: close`; after `graceMs` the rest are cut.
 */
function drain(server: Server, answering: Set<ServerResponse>, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const cut = setTimeout(() => server.closeAllConnections(), graceMs);
    cut.unref();
    server.close(() => {
      clearTimeout(cut);
      resolve();
    });
    const closeAfter = (res: ServerResponse) => {
      if (!res.headersSent) res.setHeader('connection', 'close');
    };
    answering.forEach(closeAfter);
    // A request that still arrives on a connection open before the close is served, then that connection ends.
    server.on('request', (_req, res: ServerResponse) => closeAfter(res));
    server.closeIdleConnections();
  });
}

/** In-process budgets and caches, or with REDIS_URL the ones every gateway process of the app shares. */
async function budgetsAndCachesOf(
  config: Config,
  sdkappid: number,
  log: Logger,
  embedded: boolean,
): Promise<{ budgets: Budgets; tagCache?: AccountCache<string[]>; attributeCache?: AccountCache<Attrs> }> {
  const ttlMs = config.cacheTtlMs;
  // Each embedded emulator is an app of its own with its own store: sharing a cache between them would mix their tags.
  if (embedded && config.redisUrl)
    log.warn('REDIS_URL is ignored with the embedded emulator: each process has its own upstream');
  const url = embedded ? undefined : config.redisUrl;
  if (!url)
    return {
      budgets: localBudgets(config.maxQps),
      tagCache: ttlMs > 0 ? new MemoryAccountCache<string[]>(ttlMs) : undefined,
      attributeCache: ttlMs > 0 ? new MemoryAccountCache<Attrs>(ttlMs) : undefined,
    };
  const cacheOpts = { url, sdkappid, ttlMs, log };
  const [budgets, tagCache, attributeCache] = await Promise.all([
    // A call holds its slot at most one attempt's time limit, and a little for getting there.
    redisBudgets({
      url,
      sdkappid,
      limit: config.maxQps,
      replicas: config.replicas,
      leaseMs: config.tim.timeoutMs + 5000,
      log,
    }),
    ttlMs > 0 ? RedisAccountCache.connect(cacheOpts, TAGS_KIND) : undefined,
    ttlMs > 0 ? RedisAccountCache.connect(cacheOpts, ATTRS_KIND) : undefined,
  ]);
  return { budgets, tagCache, attributeCache };
}

/** Push pacing and idempotency records: in this process, or with REDIS_URL shared by the fleet. */
async function pushStateOf(
  config: Config,
  tim: Config['tim'],
  log: Logger,
  embedded: boolean,
): Promise<{ pacer: PushPacer; records: PushRecords }> {
  const url = embedded ? undefined : config.redisUrl;
  if (!url) return { pacer: new LocalPushPacer(), records: new MemoryPushRecords() };
  const [pacer, records] = await Promise.all([
    RedisPushPacer.connect({ url, sdkappid: tim.sdkappid, log, leaseMs: tim.timeoutMs + 5000 }),
    RedisPushRecords.connect({ url, sdkappid: tim.sdkappid, log }),
  ]);
  return { pacer, records };
}

/** The upstream to call: the configured one, or a fresh embedded emulator when no credentials were given. */
async function upstreamOf(
  config: Config,
  logger: Logger,
): Promise<{ tim: Config['tim']; emulator: TimEmulator | null }> {
  if (config.tim.mode === 'remote') return { tim: config.tim, emulator: null };
  // A key made for this process only: nothing outside it can sign calls to its emulator.
  const secretKey = randomBytes(32).toString('hex');
  // Loaded only in emulator mode: a gateway with credentials never holds the emulator's code.
  const { TimEmulator } = await import('./emulator/index.js');
  const emulator = await TimEmulator.start({
    sdkappid: config.tim.sdkappid,
    secretKey,
    adminIdentifier: config.tim.adminIdentifier,
    port: 0,
    seed: 'demo',
    // It runs as long as the gateway does: keep only recent calls.
    maxRecordedCalls: 10_000,
  });
  logger.info(
    { emulator: emulator.url, users: emulator.store.accounts().length },
    'no TIM credentials given: serving from the embedded TIM emulator with demo users and tags',
  );
  return { tim: { ...config.tim, secretKey, baseUrl: emulator.url }, emulator };
}

/** Yoga logs errors with their objects; keep only what is safe to print (no URLs, which hold the usersig). */
function describeLogArg(arg: unknown): string {
  if (arg instanceof Error) return `${arg.name}: ${arg.message}`;
  return typeof arg === 'string' ? arg : JSON.stringify(arg);
}
