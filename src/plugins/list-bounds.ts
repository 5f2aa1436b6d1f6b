/**
 * Work bounded by what a request may ask, counted before anything runs.
 *
 * MAX_IDS_PER_REQUEST bounds distinct ids, but every list entry is work: one id sent 31,000 times
 * is one lookup and 31,000 answers to build. So, with the variables applied:
 * - every list argument, at any depth of an input (`ids`, `input`, an entry's `tags`), holds at most
 *   `maxEntries` entries, duplicates included (BAD_USER_INPUT naming the argument);
 * - the operation's cost counts list arguments: each selected field costs one per result it may
 *   produce, and a field given a list of n entries produces its selection n times. armor's cost
 *   limit sees only the document, not how long a list in the variables is, and has no list factor.
 * Lists are measured on the raw variables, before graphql-js coerces them, so a refused list costs
 * a walk over it and nothing more.
 */
import {
  getOperationAST,
  Kind,
  type ArgumentNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLError,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { badInput, gqlError } from '../schema/errors.js';

export interface ListBounds {
  /** Entries of any one list argument (ten times MAX_IDS_PER_REQUEST). */
  maxEntries: number;
  /** Results one operation may ask for, list arguments multiplied in. */
  maxCost: number;
}

export interface ListBoundsCheck {
  plugin: Plugin;
  /** The error the plugin refuses the operation with, or null when it runs (what a path that runs it itself checks first). */
  refusal(
    document: DocumentNode,
    operationName: string | null | undefined,
    variables: VariableValues,
  ): GraphQLError | null;
}

type VariableValues = Readonly<Record<string, unknown>> | null | undefined;

export function useListBounds(bounds: ListBounds): ListBoundsCheck {
  // Whether a document fits when none of its variables holds a list or an object: the same for every
  // such request (a scalar variable adds nothing), so it is worked out once per document and operation.
  // Only a fit is remembered; a refusal is a new error for each request.
  const fitsWithScalars = new WeakMap<DocumentNode, Set<string>>();
  const refusal = (document: DocumentNode, operationName: string | null | undefined, given: VariableValues) => {
    const variables = given ?? {};
    const name = operationName ?? '';
    const scalars = onlyScalars(variables);
    if (scalars && fitsWithScalars.get(document)?.has(name)) return null;
    const refused = listRefusal(bounds, document, operationName, variables);
    if (!refused && scalars) {
      let fits = fitsWithScalars.get(document);
      if (!fits) fitsWithScalars.set(document, (fits = new Set()));
      fits.add(name);
    }
    return refused;
  };
  return {
    refusal,
    plugin: {
      onExecute({ args, setResultAndStopExecution }) {
        const refused = refusal(args.document, args.operationName, args.variableValues);
        if (refused) setResultAndStopExecution({ errors: [refused] });
      },
    },
  };
}

/** Whether no variable holds a list or an object. */
function onlyScalars(variables: Readonly<Record<string, unknown>>): boolean {
  for (const key in variables) {
    const value = variables[key];
    if (value !== null && typeof value === 'object') return false;
  }
  return true;
}

/** The error to refuse the operation with, or null when its lists and cost are within bounds. */
export function listRefusal(
  bounds: ListBounds,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Readonly<Record<string, unknown>>,
) {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (!operation) return null;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);

  class TooLong extends Error {
    constructor(
      readonly argument: string,
      readonly entries: number,
    ) {
      super();
    }
  }
  /** The entries the argument's value makes its field produce; throws TooLong for any list over the bound. */
  const entriesOf = (argument: ArgumentNode): number => {
    const top = lengthOf({ node: argument.value }, variables);
    // Iterative: a list nested thousands deep must not overflow the stack here.
    const pending: Value[] = [{ node: argument.value }];
    while (pending.length > 0) {
      const value = pending.pop()!;
      const length = lengthOf(value, variables);
      if (length !== null && length > bounds.maxEntries) throw new TooLong(argument.name.value, length);
      for (const child of childrenOf(value, variables)) pending.push(child);
    }
    return Math.max(1, top ?? 1);
  };

  const costs = new Map<string, number>();
  const costOf = (set: SelectionSetNode): number => {
    let cost = 0;
    for (const node of set.selections) {
      if (node.kind === Kind.INLINE_FRAGMENT) cost += costOf(node.selectionSet);
      else if (node.kind === Kind.FRAGMENT_SPREAD) {
        const name = node.name.value;
        const fragment = fragments.get(name);
        if (!fragment || costs.has(name)) {
          cost += costs.get(name) ?? 0;
          continue;
        }
        // Validation has refused fragment cycles; the 0 stops a walk of one that got this far.
        costs.set(name, 0);
        costs.set(name, costOf(fragment.selectionSet));
        cost += costs.get(name)!;
      } else {
        const times = Math.max(1, ...(node.arguments ?? []).map(entriesOf));
        cost += 1 + times * (node.selectionSet ? costOf(node.selectionSet) : 0);
      }
    }
    return cost;
  };

  try {
    const cost = costOf(operation.selectionSet);
    if (cost <= bounds.maxCost) return null;
    return gqlError(
      'GRAPHQL_VALIDATION_FAILED',
      `This operation asks for ${cost} results (list arguments counted), over the limit of ${bounds.maxCost}: split it`,
      { limit: bounds.maxCost, http: { status: 400 } },
    );
  } catch (err) {
    if (!(err instanceof TooLong)) throw err;
    return badInput(
      `The argument "${err.argument}" holds a list of ${err.entries} entries; at most ${bounds.maxEntries} ` +
        '(ten times MAX_IDS_PER_REQUEST), duplicates included',
      { argument: err.argument, limit: bounds.maxEntries, http: { status: 400 } },
    );
  }
}

/** A value of the document, or a part of a variable's value as the client sent it (JSON). */
type Value = { node: ValueNode } | { raw: unknown };

/** A list's length (a literal, or a variable's raw value), or null for anything else. */
function lengthOf(value: Value, variables: Readonly<Record<string, unknown>>): number | null {
  if ('raw' in value) return Array.isArray(value.raw) ? value.raw.length : null;
  const { node } = value;
  if (node.kind === Kind.LIST) return node.values.length;
  if (node.kind === Kind.VARIABLE) return lengthOf({ raw: variables[node.name.value] }, variables);
  return null;
}

/** The values inside a value: list entries, object fields, a variable's value. */
function childrenOf(value: Value, variables: Readonly<Record<string, unknown>>): Value[] {
  if ('raw' in value) {
    const { raw } = value;
    if (raw === null || typeof raw !== 'object') return [];
    return (Array.isArray(raw) ? raw : Object.values(raw)).map((r: unknown) => ({ raw: r }));
  }
  const { node } = value;
  if (node.kind === Kind.LIST) return node.values.map((n) => ({ node: n }));
  if (node.kind === Kind.OBJECT) return node.fields.map((f) => ({ node: f.value }));
  if (node.kind === Kind.VARIABLE) return [{ raw: variables[node.name.value] }];
  return [];
}
