/**
 * Builds one gateway from a Config: the upstream services (emulator when no
 * credentials are given), the yoga app with its plugins, and the HTTP server.
 * Nothing here is module-level state, so a test can run two gateways at once.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createYoga, type Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { TimEmulator } from './emulator/index.js';
import { graphiqlOptions, offlineGraphiQLRenderer } from './graphiql.js';
import { admitRequest, answerClientErrors } from './http-edges.js';
import { createLogger } from './logger.js';
import { GatewayMetrics } from './metrics.js';
import { createAuth } from './plugins/auth.js';
import { useCodedHttpErrors, useInputErrorCodes } from './plugins/error-codes.js';
import { useHealth } from './plugins/health.js';
import { MAX_BODY_BYTES, useLimits } from './plugins/limits.js';
import { useMetrics } from './plugins/metrics.js';
import { useRequestId } from './plugins/request-id.js';
import { corsFor, useCsrfPrevention } from './plugins/security.js';
import { schema } from './schema/index.js';
import { createContext, type GatewayContext, type Services } from './schema/context.js';
import { TimClient } from './tim/client.js';
import { AdminSigner } from './tim/usersig.js';
import { SlidingWindowBudget, type RateBudget } from './upstream/budget.js';
import { MemoryTagCache, type TagCache } from './upstream/cache.js';
import { Circuit, type CircuitOptions } from './upstream/circuit.js';
import { RedisRateBudget } from './upstream/redis-budget.js';
import { RedisTagCache } from './upstream/redis-cache.js';
import { UpstreamScheduler } from './upstream/scheduler.js';
import { UpstreamAttributeNames } from './upstream/attribute-names.js';
import { PushSender } from './upstream/push.js';
import { LocalPushPacer, RedisPushPacer, type PushPacer } from './upstream/push-pacer.js';
import { MemoryPushRecords, RedisPushRecords, type PushRecords } from './upstream/push-records.js';

export interface GatewayOptions {
  logger?: Logger;
  /** Per-request coalescing across requests (on by default; the bench turns it off for its baseline). */
  coalesce?: boolean;
  /** The upstream circuit breaker's threshold and cooldown (tests shorten them). */
  circuit?: CircuitOptions;
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
  /** The embedded emulator, when the gateway runs without credentials. */
  emulator: TimEmulator | null;
  server: Server;
  /** Stops taking requests, finishes those in flight, then releases everything. */
  close(): Promise<void>;
}

export async function startGateway(config: Config, opts: GatewayOptions = {}): Promise<Gateway> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const { tim, emulator } = await upstreamOf(config, logger);

  const signer = new AdminSigner({ sdkappid: tim.sdkappid, identifier: tim.adminIdentifier, secretKey: tim.secretKey });
  const client = new TimClient({ baseUrl: tim.baseUrl, sdkappid: tim.sdkappid, signer, timeoutMs: tim.timeoutMs });
  const metrics = new GatewayMetrics();
  client.onCall((call) => logger.debug({ upstream: call }, 'upstream call'));
  client.onCall(metrics.upstreamCall);
  const { budget, cache } = await budgetAndCacheOf(config, tim.sdkappid, logger, emulator !== null);
  const scheduler = new UpstreamScheduler({
    client,
    budget,
    cache,
    log: logger,
    coalesce: opts.coalesce ?? true,
    circuit: new Circuit(opts.circuit),
    events: metrics.schedulerEvents,
  });
  scheduler.circuit.onChange((state) => logger.warn({ circuit: state }, `upstream circuit ${state}`));
  scheduler.circuit.onChange(metrics.circuitChanged);
  metrics.watchCircuit(() => scheduler.circuit.state);
  const push = new PushSender({
    client,
    sdkappid: tim.sdkappid,
    ...(await pushStateOf(config, tim, logger, emulator !== null)),
    // TODO(merge): the attr helper's cached attribute-name reader.
    attributeNames: new UpstreamAttributeNames(client),
    log: logger,
  });
  emulator?.pushes.onTask((task) =>
    logger.debug({ taskId: task.taskId, recipients: task.recipients }, 'emulator: push delivered'),
  );
  const services: Services = { config: { ...config, tim }, scheduler, push, log: logger };

  const auth = createAuth(config.auth, logger);
  const plugins: Plugin[] = [
    useMetrics({ metrics, logger, graphqlEndpoint: '/graphql' }),
    useCodedHttpErrors(),
    useRequestId(),
    useHealth({
      problem: () => (scheduler.ready ? null : 'the upstream is failing; calls are paused'),
      details: () => ({ budget: budget.describe(), cache: cache?.describe() ?? 'off' }),
    }),
    // Security, in the order a request meets it: CSRF, then the caller's token, then the document's limits.
    useCsrfPrevention(),
    auth.plugin,
    useLimits({ introspection: config.introspection }),
    useInputErrorCodes(),
  ];
  const yoga = createYoga<Record<string, unknown>, GatewayContext>({
    schema,
    plugins,
    context: ({ request }) => createContext(services, auth.callerOf(request)),
    graphqlEndpoint: '/graphql',
    landingPage: false,
    // isDev pinned: left unset, yoga reads NODE_ENV=development as leave to put an error's stack in the answer.
    maskedErrors: { isDev: false },
    cors: corsFor(config.corsOrigins),
    batching: false,
    // No uploads: a multipart body is refused (415) rather than parsed.
    multipart: false,
    maxRequestBodySize: MAX_BODY_BYTES,
    graphiql: config.graphiql ? graphiqlOptions(config.auth.mode === 'jwt') : false,
    renderGraphiQL: offlineGraphiQLRenderer(),
    logging: {
      debug: (...args) => logger.debug(args.map(String).join(' ')),
      info: (...args) => logger.info(args.map(String).join(' ')),
      warn: (...args) => logger.warn(args.map(String).join(' ')),
      error: (...args) => logger.error(args.map(describeLogArg).join(' ')),
    },
  });

  // A missing Host is refused by admitRequest, as a coded error with a request id, rather than by node's bare 400.
  const server = createServer({ requireHostHeader: false }, (req, res) => {
    if (admitRequest(req, res)) void yoga(req, res);
  });
  answerClientErrors(server);
  const answering = trackAnswers(server);
  const release = async () => {
    await budget.close?.();
    await cache?.close?.();
    await push.close();
    client.close();
    await emulator?.close();
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
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  logger.info(
    { url: `${url}/graphql`, upstream: emulator ? 'emulator' : tim.baseUrl, auth: config.auth.mode },
    'gateway listening',
  );

  let closing: Promise<void> | null = null;
  const close = () =>
    (closing ??= (async () => {
      // Upstream work of a request ends by its deadline; one call started just before may take its timeout more.
      await drain(server, answering, config.requestTimeoutMs + tim.timeoutMs);
      await release();
    })());

  return { url, config: services.config, services, client, logger, metrics, emulator, server, close };
}

/** Responses not yet finished, so that a drain can tell them to close their connection. */
function trackAnswers(server: Server): Set<ServerResponse> {
  const answering = new Set<ServerResponse>();
  server.on('request', (_req, res: ServerResponse) => {
    answering.add(res);
    res.once('close', () => answering.delete(res));
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

/** In-process budget and cache, or with REDIS_URL the ones every gateway process of the app shares. */
async function budgetAndCacheOf(
  config: Config,
  sdkappid: number,
  log: Logger,
  embedded: boolean,
): Promise<{ budget: RateBudget; cache?: TagCache }> {
  const ttlMs = config.cacheTtlMs;
  // Each embedded emulator is an app of its own with its own store: sharing a cache between them would mix their tags.
  if (embedded && config.redisUrl)
    log.warn('REDIS_URL is ignored with the embedded emulator: each process has its own upstream');
  const url = embedded ? undefined : config.redisUrl;
  if (!url)
    return {
      budget: SlidingWindowBudget.paced(config.maxQps),
      cache: ttlMs > 0 ? new MemoryTagCache(ttlMs) : undefined,
    };
  const [budget, cache] = await Promise.all([
    // A call holds its slot at most one attempt's time limit, and a little for getting there.
    RedisRateBudget.connect({
      url,
      sdkappid,
      limit: config.maxQps,
      replicas: config.replicas,
      leaseMs: config.tim.timeoutMs + 5000,
      log,
    }),
    ttlMs > 0 ? RedisTagCache.connect({ url, sdkappid, ttlMs, log }) : undefined,
  ]);
  return { budget, cache };
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
