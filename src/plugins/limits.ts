/**
 * Bounds on what one request may cost before anything runs: its body, its
 * tokens, depth, aliases, directives and cost (graphql-armor), and whether it
 * may look at the schema. Every refusal happens while parsing or validating,
 * so a refused request never reaches a resolver or the upstream.
 *
 * The schema is flat (Query -> User -> tags), so any honest operation is at most
 * three levels deep; a client asks for many users with `users(ids:)`, not with
 * aliases. The limits leave room for that and for GraphiQL's own introspection
 * query, and no more. Introspection has limits of its own (armor leaves
 * `__schema` out of depth and cost): GraphiQL's query is 21 levels deep, one
 * `__schema` field; a flood of aliased `__schema` trees, or a 51-level `ofType`
 * chain, is refused. Lists in arguments are bounded in list-bounds.ts, by listBoundsFor.
 */
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import {
  GraphQLError,
  Kind,
  NoSchemaIntrospectionCustomRule,
  type ASTVisitor,
  type FragmentDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';
import { takeApart } from './fold.js';
import type { ListBounds } from './list-bounds.js';

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
  /** `__schema` and `__type` fields in one operation: GraphiQL asks one. */
  maxIntrospectionFields: 2,
  /** Depth below `__schema` / `__type`, the field itself counted: GraphiQL's query is about 20 deep. */
  maxIntrospectionDepth: 24,
  /** List entries one argument may hold, duplicates included, per id MAX_IDS_PER_REQUEST allows. */
  listEntriesPerId: 10,
  /** Results one operation may ask for, list arguments counted, per id MAX_IDS_PER_REQUEST allows. */
  costPerId: 30,
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

/**
 * The limits, as plugins in the order they must run: armor's (taken apart into the plugins it adds), the
 * stack-depth guard after them, the introspection rule. Their parse and validate hooks pass on nearly every
 * request; the gateway runs them folded (fold.ts) with the hooks that follow them.
 */
export function limitPlugins(opts: LimitOptions): Plugin[] {
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
  return [
    {
      onResponse({ response }) {
        // Yoga stops reading an oversized body; the rest would keep the connection busy until it times
        // out. Closing it after the 413 frees it now.
        if (response.status === 413) response.headers.set('connection', 'close');
      },
    },
    ...takeApart(armor as Plugin),
    // After armor: its token limit sets a parse function of its own, which this one wraps.
    useNoStackOverflow(),
    {
      onValidate({ addValidationRule }) {
        addValidationRule(opts.introspection ? IntrospectionLimits : NoSchemaIntrospectionCustomRule);
      },
    },
  ];
}

/** The list bounds MAX_IDS_PER_REQUEST sets (list-bounds.ts): checked before execution, ahead of authorisation. */
export function listBoundsFor(maxIdsPerRequest: number): ListBounds {
  return {
    maxEntries: QUERY_LIMITS.listEntriesPerId * maxIdsPerRequest,
    maxCost: QUERY_LIMITS.costPerId * maxIdsPerRequest,
  };
}

/**
 * graphql-js parses and validates by recursion, so a document nested deep enough (a list literal
 * 2,400 levels deep is 4.8 kB) overflows the stack: a RangeError, which yoga would answer 500.
 * It is the document's fault, so it is answered as one that does not parse.
 */
function useNoStackOverflow(): Plugin {
  const tooDeep = () =>
    createGraphQLError('Syntax Error: the document is nested too deeply to read', {
      extensions: { code: 'GRAPHQL_PARSE_FAILED', http: { status: 400 } },
    });
  return {
    onParse({ parseFn, setParseFn }) {
      setParseFn((source, options) => {
        try {
          return parseFn(source, options);
        } catch (err) {
          throw err instanceof RangeError ? tooDeep() : err;
        }
      });
    },
    onValidate({ validateFn, setValidationFn }) {
      setValidationFn((...args) => {
        try {
          return validateFn(...args);
        } catch (err) {
          if (err instanceof RangeError) return [tooDeep()];
          throw err;
        }
      });
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

/** At most maxIntrospectionFields `__schema`/`__type` fields, none deeper than maxIntrospectionDepth. */
const IntrospectionLimits: ValidationRule = (context): ASTVisitor => {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of context.getDocument().definitions)
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  /** Depth of a selection set, fragments flattened; a fragment's depth is worked out once (a cycle counts 0). */
  const fragmentDepths = new Map<string, number>();
  const depthOf = (set: SelectionSetNode | undefined): number => {
    let deepest = 0;
    for (const node of set?.selections ?? []) {
      if (node.kind === Kind.FIELD) deepest = Math.max(deepest, 1 + depthOf(node.selectionSet));
      else if (node.kind === Kind.INLINE_FRAGMENT) deepest = Math.max(deepest, depthOf(node.selectionSet));
      else {
        const name = node.name.value;
        if (!fragmentDepths.has(name)) {
          fragmentDepths.set(name, 0);
          fragmentDepths.set(name, depthOf(fragments.get(name)?.selectionSet));
        }
        deepest = Math.max(deepest, fragmentDepths.get(name)!);
      }
    }
    return deepest;
  };
  let count = 0;
  return {
    OperationDefinition() {
      count = 0;
    },
    Field(node) {
      if (node.name.value !== '__schema' && node.name.value !== '__type') return;
      count++;
      if (count === QUERY_LIMITS.maxIntrospectionFields + 1)
        context.reportError(
          new GraphQLError(
            `Introspection limit: at most ${QUERY_LIMITS.maxIntrospectionFields} __schema or __type fields in one operation`,
            { nodes: node },
          ),
        );
      const limit = QUERY_LIMITS.maxIntrospectionDepth;
      const depth = 1 + depthOf(node.selectionSet);
      if (depth > limit)
        context.reportError(
          new GraphQLError(`Introspection depth limit of ${limit} exceeded (${node.name.value} nested too deeply)`, {
            nodes: node,
          }),
        );
    },
  };
};

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
