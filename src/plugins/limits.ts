/**
 * Bounds on what one request may cost before anything runs: its body, its
 * tokens, depth, aliases, directives and cost (graphql-armor), and whether it
 * may look at the schema. Every refusal happens while parsing or validating,
 * so a refused request never reaches a resolver or the upstream.
 *
 * The schema is flat (Query -> User -> tags), so any honest operation is at most
 * three levels deep; a client asks for many users with `users(ids:)`, not with
 * aliases. The limits leave room for that and for GraphiQL's own introspection
 * query, and no more.
 */
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import type { GraphQLError, ValidationContext } from 'graphql';
import { NoSchemaIntrospectionCustomRule } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';

export const QUERY_LIMITS = {
  /** Depth of selection sets (introspection's `__schema` is not counted). */
  maxDepth: 8,
  /** Aliased fields in one operation. */
  maxAliases: 30,
  /** Lexical tokens in one document: room for 1,000 literal ids in `users(ids:)`. */
  maxTokens: 5000,
  /** graphql-armor's cost: 30 aliased `users { id tags }` cost 150. */
  maxCost: 1000,
  maxDirectives: 50,
} as const;

/**
 * Bytes of one request body (useBodySizeLimit: 413 beyond it, from Content-Length or, for a
 * chunked body, as it streams in). A read of 1,000 ids of 32 bytes takes 35 kB; a write
 * to 1,000 users of a few tags each, about 100 to 200 kB. A write of 10 long tags to each of
 * 1,000 users (over 500 kB) must be split into several requests.
 */
export const MAX_BODY_BYTES = 256 * 1024;

export interface LimitOptions {
  /** Answer `__schema` and `__type` (GRAPHQL_INTROSPECTION). */
  introspection: boolean;
}

export function useLimits(opts: LimitOptions): Plugin {
  // Report a broken limit as a validation error (HTTP 400, like any invalid document) instead of
  // throwing out of the validator; the max-tokens check runs in the parser and keeps throwing.
  const report = { propagateOnRejection: false, onReject: [reportTo] };
  const armor = EnvelopArmorPlugin({
    maxDepth: { n: QUERY_LIMITS.maxDepth, ...report },
    maxAliases: { n: QUERY_LIMITS.maxAliases, ...report },
    maxDirectives: { n: QUERY_LIMITS.maxDirectives, ...report },
    costLimit: { maxCost: QUERY_LIMITS.maxCost, ...report },
    maxTokens: { n: QUERY_LIMITS.maxTokens },
    // With introspection on, the schema is public anyway; with it off, "Did you mean" would leak field names.
    blockFieldSuggestion: { enabled: !opts.introspection },
  });
  return {
    onResponse({ response }) {
      // Yoga stops reading an oversized body; the rest would keep the connection busy until it times
      // out. Closing it after the 413 frees it now.
      if (response.status === 413) response.headers.set('connection', 'close');
    },
    onPluginInit({ addPlugin }) {
      addPlugin(armor as Plugin);
      if (!opts.introspection) {
        addPlugin({
          onValidate({ addValidationRule }) {
            addValidationRule(NoSchemaIntrospectionCustomRule);
          },
        });
      }
    },
  };
}

/** Only one plain non-negative integer is a Content-Length (a list of them smells of request smuggling). */
const CONTENT_LENGTH = /^\d+$/;

/**
 * Refuses a request body over `limit` bytes with 413, as yoga's `maxRequestBodySize` does (set it
 * to `false` beside this), at a fraction of the cost: yoga pipes every body through a counting
 * TransformStream, a stream pipeline per request that took about a tenth of a small request's
 * CPU. A body with a Content-Length needs no counting: node's parser delivers exactly that many
 * bytes, so the header is checked once. Only a chunked body, whose size is known when it ends,
 * is counted as it streams in.
 */
export function useBodySizeLimit(limit: number): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser, fetchAPI }) {
      const length = request.headers.get('content-length');
      if (length !== null) {
        if (!CONTENT_LENGTH.test(length)) {
          throw createGraphQLError('Content-Length header is invalid.', {
            extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
          });
        }
        if (Number(length) > limit) throw bodyTooLarge();
        return;
      }
      if (!requestParser || !request.body) return;
      setRequestParser((req) => requestParser(countedBody(req, limit, fetchAPI)));
    },
  };
}

function bodyTooLarge(): GraphQLError {
  return createGraphQLError('Request body too large', {
    extensions: { code: 'REQUEST_ENTITY_TOO_LARGE', http: { status: 413 } },
  });
}

/** The request with its body counted as it streams, failing with 413 past `limit` bytes. */
function countedBody(
  request: Request,
  limit: number,
  fetchAPI: { Request: typeof Request; TransformStream: typeof TransformStream },
): Request {
  // A native stream needs the native TransformStream; whatwg-node's ponyfill stream, the ponyfill's.
  const Transform = request.body instanceof ReadableStream ? globalThis.TransformStream : fetchAPI.TransformStream;
  let bytes = 0;
  const body = request.body!.pipeThrough(
    new Transform<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        bytes += chunk.byteLength;
        if (bytes > limit) controller.error(bodyTooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
  return new fetchAPI.Request(request.url, {
    method: request.method,
    headers: request.headers,
    signal: request.signal,
    body,
    duplex: 'half',
  } as RequestInit);
}

function reportTo(context: ValidationContext | null, error: GraphQLError): void {
  context?.reportError(error);
}
