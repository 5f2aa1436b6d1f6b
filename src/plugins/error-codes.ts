/**
 * Every error a client gets carries `extensions.code`. graphql-js reports bad
 * variable values (a null in `[ID!]!`, a missing required variable) with no
 * code at all; those are malformed input, refused before anything ran, so
 * they get `BAD_USER_INPUT`, as CONTRACT.md names it.
 *
 * Yoga leaves a few more without one, fixed here too:
 * - its GET and form parsers `JSON.parse` the `variables` and `extensions`
 *   parameters unguarded, so a malformed one was masked as a 500; it is the
 *   client's bad request (400 `BAD_REQUEST`);
 * - a subscription reached graphql-js's executor, which answers a schema with
 *   no Subscription type by an error with no code; it is refused as an invalid
 *   document instead (400 `GRAPHQL_VALIDATION_FAILED`), before any resolver;
 * - 404, 406 and 415 come with no body at all; they get a JSON error whose code
 *   names the status (`NOT_FOUND`, `NOT_ACCEPTABLE`, `UNSUPPORTED_MEDIA_TYPE`).
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { GraphQLError, type ExecutionResult, type ValidationRule } from 'graphql';
import { createGraphQLError, type Plugin } from 'graphql-yoga';

export function useInputErrorCodes(): Plugin {
  return {
    onRequestParse({ requestParser, setRequestParser }) {
      if (!requestParser) return;
      setRequestParser(async (request) => {
        try {
          return await requestParser(request);
        } catch (err) {
          throw asBadRequest(err);
        }
      });
    },
    onValidate({ addValidationRule }) {
      addValidationRule(NoSubscriptions);
    },
    onExecute() {
      return {
        onExecuteDone({ result, setResult }) {
          if (Symbol.asyncIterator in result) return;
          const coded = withInputCodes(result as ExecutionResult);
          if (coded !== result) setResult(coded);
        },
      };
    },
  };
}

/** The result with BAD_USER_INPUT on the errors of an execution that never started; the same result when there are none. */
export function withInputCodes(result: ExecutionResult): ExecutionResult {
  // Execution that never started (variables refused) returns errors and no data at all.
  if (result.data !== undefined || !result.errors?.some((e) => !e.extensions?.code)) return result;
  return { ...result, errors: result.errors.map(withInputCode) };
}

/** Gives a coded JSON error body to the error responses yoga sends empty. */
export function useCodedHttpErrors(): Plugin {
  return {
    onResponse({ request, response, setResponse, fetchAPI }) {
      if (response.status < 400 || response.headers.has('content-type')) return;
      const headers = new fetchAPI.Headers(response.headers);
      headers.set('content-type', 'application/json; charset=utf-8');
      const body = httpErrorBody(response.status, explain(response, new URL(request.url, 'http://localhost').pathname));
      setResponse(new fetchAPI.Response(body, { status: response.status, headers }));
    },
  };
}

/** `{"errors": [...]}` for an HTTP-level refusal, its code named after the status (404: `NOT_FOUND`). */
export function httpErrorBody(status: number, message: string): string {
  const code = (STATUS_CODES[status] ?? 'Bad Request').toUpperCase().replace(/[^A-Z0-9]+/g, '_');
  return JSON.stringify({ errors: [{ message, extensions: { code } }] });
}

/** Answers a node response with a JSON error body, for refusals made before yoga sees the request. */
export function writeErrorResponse(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string>,
): void {
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

function explain(response: Response, path: string): string {
  switch (response.status) {
    case 404:
      return `Nothing is served at ${JSON.stringify(path.slice(0, 100))}: GraphQL is at /graphql; also /healthz, /readyz and /metrics`;
    case 406:
      return `The Accept header allows none of the types this endpoint answers in: ${response.headers.get('accept') ?? 'application/json'}`;
    case 415:
      return 'Send the request as application/json (or application/graphql), or as a GET with ?query=';
    default:
      return STATUS_CODES[response.status] ?? 'The request was refused';
  }
}

/** A parser's failure as the client's fault; a coded error (413, say) or an abort passes unchanged. */
function asBadRequest(err: unknown): unknown {
  if (err instanceof GraphQLError) {
    if (err.extensions?.code) return err;
    return createGraphQLError(err.message, {
      extensions: { ...err.extensions, code: 'BAD_REQUEST', http: { status: 400 } },
    });
  }
  if (!(err instanceof SyntaxError)) return err;
  return createGraphQLError('The request is malformed: its variables or extensions are not valid JSON', {
    extensions: { code: 'BAD_REQUEST', http: { status: 400 } },
  });
}

const NoSubscriptions: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (node.operation !== 'subscription') return;
    context.reportError(new GraphQLError('This API has no subscriptions: send a query or a mutation', { nodes: node }));
  },
});

function withInputCode(error: GraphQLError): GraphQLError {
  if (error.extensions?.code) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    // A request error (GraphQL over HTTP): nothing ran, so it is a 400 whichever executor refused the variables.
    extensions: { ...error.extensions, code: 'BAD_USER_INPUT', http: { status: 400 } },
  });
}
