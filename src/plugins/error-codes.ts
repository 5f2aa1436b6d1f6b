/**
 * Every error a client gets carries `extensions.code`. graphql-js reports bad
 * variable values (a null in `[ID!]!`, a missing required variable) with no
 * code at all; those are malformed input, refused before anything ran, so
 * they get `BAD_USER_INPUT`, as CONTRACT.md names it.
 */
import { GraphQLError, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';

export function useInputErrorCodes(): Plugin {
  return {
    onExecute() {
      return {
        onExecuteDone({ result, setResult }) {
          if (Symbol.asyncIterator in result) return;
          const done = result as ExecutionResult;
          // Execution that never started (variables refused) returns errors and no data at all.
          if (done.data !== undefined || !done.errors?.some((e) => !e.extensions?.code)) return;
          setResult({ ...done, errors: done.errors.map(withInputCode) });
        },
      };
    },
  };
}

function withInputCode(error: GraphQLError): GraphQLError {
  if (error.extensions?.code) return error;
  return new GraphQLError(error.message, {
    nodes: error.nodes,
    source: error.source,
    positions: error.positions,
    path: error.path,
    originalError: error.originalError,
    extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
  });
}
