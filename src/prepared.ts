/**
 * Prepared queries: a query document that has run once through yoga's whole pipeline is run
 * again, by the fast path (src/fast-path.ts), without it.
 *
 * For a document it has seen, the pipeline does the same every time: the cached parse and
 * validation (armor's limits among its rules) pass, and a dozen plugins' hooks are walked through
 * envelop's promise helpers around one call of what graphql-jit compiled. That walk, not the
 * work, was most of what a single-user lookup cost: about 150 µs of CPU and 25 KB of garbage per
 * request, against 25 µs for the execution itself.
 *
 * So once a query has run, its document and compiled form are kept here (by its text and the
 * operation name given), and a request for it runs only what the pipeline's hooks would do for it,
 * each taken from its plugin: the list bounds and the caller's authorisation, checked first (a
 * request either would refuse goes to the pipeline whole, which refuses it as before); the
 * gateway's context; the deadline's backstop; the execution; then, in the pipeline's order, the
 * Prometheus plugin's observations, the input error codes and yoga's error masking. The request's
 * HTTP-level work (its token, id, metrics, span and answer) stays the fast path's.
 *
 * Only a document holding one query and nothing else to run is kept: a mutation is not (its writes
 * are worth the pipeline's care), nor an operation name that matches no operation, nor a text
 * longer than MAX_PREPARED_TEXT.
 */
import type { ServerResponse } from 'node:http';
import { Kind, type DocumentNode, type ExecutionResult, type GraphQLError, type GraphQLSchema } from 'graphql';
import { createGraphQLError, type GraphQLParams, type Plugin } from 'graphql-yoga';
import { LRUCache } from 'lru-cache';
import type { Auth } from './plugins/auth.js';
import { armDeadline } from './plugins/deadline.js';
import { withInputCodes } from './plugins/error-codes.js';
import type { ListBoundsCheck } from './plugins/list-bounds.js';
import type { RequestObserver } from './plugins/metrics.js';
import type { RequestTracing } from './plugins/tracing.js';
import type { YogaMetrics } from './plugins/yoga-metrics.js';

/** Queries kept, as yoga's parse cache keeps documents. */
const MAX_PREPARED = 1024;
/**
 * The longest query text kept (a frontend's queries are a few hundred bytes): the texts are the keys,
 * and a body may hold 256 KB of one, so 1,024 kept texts of any length could hold 256 MB.
 */
export const MAX_PREPARED_TEXT = 8 * 1024;

/** What graphql-jit's envelop plugin makes of a document and caches by its text (its `JITCache` entry). */
export interface Compiled {
  query(root: unknown, context: unknown, variables: unknown): Promise<ExecutionResult> | ExecutionResult;
  stringify(result: unknown): string;
}

export interface PreparedQuery {
  document: DocumentNode;
  compiled: Compiled;
}

/** Yoga's error masking, as its constructor made it from the `maskedErrors` option (null: masking off). */
export interface Masking {
  maskError(error: unknown, message: string): Error;
  errorMessage: string;
}

export interface PreparedOptions {
  queries: PreparedQueries;
  schema: GraphQLSchema;
  auth: Auth;
  listBounds: ListBoundsCheck;
  observer: RequestObserver;
  tracing: RequestTracing;
  yogaMetrics: YogaMetrics;
  /** The deadline backstop's limit (plugins/deadline.ts). */
  deadlineMs: number;
  /** The gateway's part of a request's context, as its context plugin extends it. */
  contextOf(request: Request): object;
  masking: Masking | null;
}

/** The context yoga's node adapter and handler give an operation, which the gateway's context extends. */
export interface RequestContext {
  req: unknown;
  res: ServerResponse;
  waitUntil(work: unknown): void;
  request: Request;
  params: GraphQLParams;
}

/** The queries kept, and the plugin that keeps them: made before yoga, whose plugin list holds it. */
export class PreparedQueries {
  private readonly compiledByText = new LRUCache<string, Compiled>({ max: MAX_PREPARED });
  /**
   * graphql-jit's cache by document text (its plugin's `cache` option), which the queries kept here
   * share; a text too long to keep is compiled as before, by the plugin's own cache by document.
   */
  readonly compiled = {
    get: (text: string) => this.compiledByText.get(text),
    set: (text: string, compiled: Compiled) => {
      if (text.length <= MAX_PREPARED_TEXT) this.compiledByText.set(text, compiled);
    },
  };
  private readonly queries = new LRUCache<string, PreparedQuery>({ max: MAX_PREPARED });

  /**
   * The plugin that keeps each query that ran: last of the execute hooks, so it sees only an
   * operation that none of them stopped, and after it ran, when graphql-jit has compiled it.
   */
  readonly plugin: Plugin = {
    onExecute: ({ args }) => {
      const query = (args.contextValue as { params?: GraphQLParams }).params?.query;
      if (typeof query !== 'string' || query.length > MAX_PREPARED_TEXT) return;
      if (!isOneQuery(args.document, args.operationName)) return;
      const key = keyOf(query, args.operationName);
      if (this.queries.has(key)) return;
      return {
        onExecuteDone: () => {
          const compiled = this.compiled.get(query);
          if (compiled) this.queries.set(key, { document: args.document, compiled });
        },
      };
    },
  };

  /** The query kept for this text and operation name, if it has run before. */
  find(params: GraphQLParams): PreparedQuery | undefined {
    return typeof params.query === 'string' ? this.queries.get(keyOf(params.query, params.operationName)) : undefined;
  }
}

/** Runs kept queries: made once yoga is (its error masking is yoga's). */
export class PreparedRunner {
  /** Requests answered by a kept query (not handed to the pipeline). */
  ran = 0;

  constructor(private readonly opts: PreparedOptions) {}

  find(params: GraphQLParams): PreparedQuery | undefined {
    return this.opts.queries.find(params);
  }

  /**
   * Runs a kept query for the request, as the pipeline would; null, having done nothing, when the
   * pipeline would refuse it before execution (its list bounds or the caller's scopes).
   */
  async run(prepared: PreparedQuery, context: RequestContext): Promise<ExecutionResult | null> {
    const { schema, auth, listBounds, observer, tracing, yogaMetrics } = this.opts;
    const { request, params } = context;
    const { document } = prepared;
    const args = { schema, document, operationName: params.operationName, variableValues: params.variables };
    if (listBounds.refusal(document, params.operationName, params.variables) || auth.denial(request, args)) return null;
    this.ran++;

    observer.parsed(request, document, params.operationName);
    Object.assign(context, this.opts.contextOf(request));
    observer.executing(request, args);
    tracing.executing(request, args);
    const deadline = armDeadline(context.res, request, this.opts.deadlineMs);
    const started = Date.now();
    let result: ExecutionResult;
    try {
      result = await prepared.compiled.query(undefined, context, params.variables);
    } catch (err) {
      // What yoga makes of an execution that threw (its handleParams): the error, masked; no after-hook runs.
      return { errors: [this.maskedError(err)] };
    } finally {
      clearTimeout(deadline);
    }
    (result as { stringify?: Compiled['stringify'] }).stringify = prepared.compiled.stringify;
    yogaMetrics.observeExecuted('query', result, (Date.now() - started) / 1000);
    result = withInputCodes(result);
    return this.masked(result);
  }

  private maskedError(err: unknown): GraphQLError {
    const { masking } = this.opts;
    const error = masking ? masking.maskError(err, masking.errorMessage) : err;
    if (isGraphQLError(error)) return error;
    return createGraphQLError(error instanceof Error ? error.message : String(error), {
      originalError: error as Error,
    });
  }

  /** Yoga's masking of an execution's errors (its `useMaskedErrors`): what is no GraphQL error of ours says only "Unexpected error.". */
  private masked(result: ExecutionResult): ExecutionResult {
    const { masking } = this.opts;
    if (!masking || result.errors == null) return result;
    return {
      ...result,
      errors: result.errors.map((error) => masking.maskError(error, masking.errorMessage) as GraphQLError),
    };
  }
}

/** As yoga tells one (by name): the error its masking makes is a plain Error named GraphQLError. */
function isGraphQLError(error: unknown): error is GraphQLError {
  return error instanceof Error && error.name === 'GraphQLError';
}

/** The key of a query: the name given (a null name and an empty one told apart) and the text. */
function keyOf(query: string, operationName: string | null | undefined): string {
  return `${operationName == null ? '\0' : operationName}\n${query}`;
}

/** Whether the document's one operation is a query, and the name given (if any) is its name. */
function isOneQuery(document: DocumentNode, operationName: string | null | undefined): boolean {
  let operations = 0;
  let fits = false;
  for (const def of document.definitions) {
    if (def.kind !== Kind.OPERATION_DEFINITION) continue;
    operations++;
    fits = def.operation === 'query' && (operationName == null || def.name?.value === operationName);
  }
  return operations === 1 && fits;
}
