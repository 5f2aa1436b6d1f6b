/**
 * OpenTelemetry for one gateway: its own tracer provider, never the global
 * one, so two gateways in a process export apart and nothing outlives `close`.
 * With no endpoint configured no SDK is loaded or created at all.
 *
 * Nothing is instrumented automatically: spans hold only the attributes the
 * gateway writes (src/plugins/tracing.ts, src/upstream/trace.ts). HTTP
 * auto-instrumentation would record the TIM URL, whose query holds the usersig.
 */
import type { Tracer } from '@opentelemetry/api';
import type { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Config } from './config.js';
import { NO_TRACE, otelUpstreamTracer, type UpstreamTracer } from './upstream/trace.js';

export interface Tracing {
  /** The tracer for operation spans; null when tracing is off. */
  tracer: Tracer | null;
  upstream: UpstreamTracer;
  /** Sends what is still buffered, then stops; never rejects (a collector that is away loses those spans). */
  shutdown(): Promise<void>;
}

const OFF: Tracing = { tracer: null, upstream: NO_TRACE, shutdown: async () => {} };

/** The SDK is loaded only when tracing is on: it is a few MB of heap that every gateway would carry. */
export async function createTracing({ endpoint, serviceName }: Config['tracing']): Promise<Tracing> {
  if (!endpoint) return OFF;
  const [
    { OTLPTraceExporter },
    { resourceFromAttributes },
    { BatchSpanProcessor, NodeTracerProvider },
    { ATTR_SERVICE_NAME },
  ] = await Promise.all([
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/semantic-conventions'),
  ]);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName }),
    // OTLP/HTTP with JSON bodies, to the signal path the OTLP spec appends to the base endpoint.
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }))],
  });
  const tracer = provider.getTracer('tim-tags-graphql');
  return { tracer, upstream: otelUpstreamTracer(tracer), shutdown: () => flushWithin(provider, SHUTDOWN_MS) };
}

/**
 * How long a stop waits for the last spans. The exporter retries a collector
 * that is away for several seconds; a SIGTERM's drain should not wait for it.
 */
const SHUTDOWN_MS = 2000;

function flushWithin(provider: NodeTracerProvider, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
    provider.shutdown().then(resolve, () => resolve());
  });
}
