/**
 * One span per upstream call attempt. The attempt loop (attempt.ts) knows
 * nothing of OpenTelemetry beyond this interface; with tracing off it gets
 * `NO_TRACE`. A lookup or write carries its request's span context
 * (`RequestTrace`) down to the attempt loop, which makes the spans.
 *
 * Only what is written here reaches a span: the command, counts, the attempt
 * and TIM's ErrorCode. Never the URL (its query holds the usersig), the body
 * or an account id.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type SpanContext, type Tracer } from '@opentelemetry/api';

/** The trace a lookup or write belongs to: its GraphQL operation's span, when tracing is on. */
export type RequestTrace = SpanContext | undefined;

export interface UpstreamCallInfo {
  command: string;
  accounts: number;
  /** 1 for the first try. */
  attempt: number;
  /** How long this attempt waited for its rate-budget slot. */
  budgetWaitMs: number;
  /** The spans of the GraphQL operations this call serves (several when coalesced), in queue order. */
  requests: readonly SpanContext[];
}

export interface UpstreamCallEnd {
  /** TIM's ErrorCode, when it answered FAIL (or a retryable HTTP status, as the client reports it). */
  errorCode?: number;
  /** Why the attempt failed, in words that hold no URL. */
  error?: string;
}

export interface UpstreamCallSpan {
  end(result?: UpstreamCallEnd): void;
}

export interface UpstreamTracer {
  call(info: UpstreamCallInfo): UpstreamCallSpan;
}

/** The distinct operations among `traces`, first come first (a coalesced call serves a request once). */
export function distinctRequests(traces: readonly RequestTrace[]): SpanContext[] {
  const requests = new Map<string, SpanContext>();
  for (const t of traces) if (t && !requests.has(t.spanId)) requests.set(t.spanId, t);
  return [...requests.values()];
}

const NO_SPAN: UpstreamCallSpan = { end() {} };

/** Tracing off: nothing is recorded. */
export const NO_TRACE: UpstreamTracer = { call: () => NO_SPAN };

/**
 * Spans on a real tracer. A call serving one request is that request's child;
 * a coalesced call is the child of the first and linked to every one of them,
 * so each request's trace can reach the call it waited for.
 */
export function otelUpstreamTracer(tracer: Tracer): UpstreamTracer {
  return {
    call({ command, accounts, attempt, budgetWaitMs, requests }) {
      const parent = requests[0];
      const span = tracer.startSpan(
        `TIM ${command}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            'tim.command': command,
            'tim.accounts': accounts,
            'tim.attempt': attempt,
            'tim.budget_wait_ms': Math.round(budgetWaitMs),
            'tim.requests': requests.length,
          },
          links: requests.length > 1 ? requests.map((context) => ({ context })) : [],
        },
        parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT,
      );
      return {
        end(result = {}) {
          if (result.errorCode !== undefined) span.setAttribute('tim.error_code', result.errorCode);
          if (result.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: result.error });
          span.end();
        },
      };
    },
  };
}
