/**
 * Yoga's parser and validation cache, without what it cost every request. Yoga keys each
 * validation result by the names of all the rules in force joined into one string: some forty
 * names, a new string of several hundred characters built and hashed for an LRU lookup on every
 * request, about 2% of a single-user lookup's CPU.
 *
 * This one keeps the same things: parsed documents and parse errors by their source (1,024 of
 * each, least recently used out), and validation results by schema and document (weakly, so a
 * result goes with its document). A result is reused only under the rules it was made with, told
 * by comparing them one by one (the same function, or one of the same name: armor makes its rules
 * anew for every request), which builds nothing. It takes yoga's place in the plugin order
 * (createYoga's `parserAndValidationCache: false`, this last): after every plugin that adds a rule.
 */
import type { DocumentNode, GraphQLSchema, ValidationRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { LRUCache } from 'lru-cache';

/** Documents (and, apart, parse errors) remembered, as yoga's cache. */
const MAX_DOCUMENTS = 1024;
/** Rule sets one document's results are kept for: in a gateway the rules are the same for every request. */
const MAX_RULE_SETS = 4;

interface Validated {
  /** The rules the result was made under, and their names: armor adds a new function of the same name each time. */
  rules: readonly ValidationRule[];
  names: string[];
  result: readonly unknown[];
}

export function useDocumentCache(): Plugin {
  const documents = new LRUCache<string, DocumentNode>({ max: MAX_DOCUMENTS });
  const parseErrors = new LRUCache<string, Error>({ max: MAX_DOCUMENTS });
  const validations = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, Validated[]>>();
  return {
    onParse({ params, setParsedDocument }) {
      const source = params.source.toString();
      const document = documents.get(source);
      if (document) {
        setParsedDocument(document);
        return;
      }
      const error = parseErrors.get(source);
      if (error) throw error;
      return ({ result }) => {
        if (result == null) return;
        if (result instanceof Error) parseErrors.set(source, result);
        else documents.set(source, result as DocumentNode);
      };
    },
    onValidate({ params: { schema, documentAST, rules }, setResult }) {
      // No schema, no cache (as yoga's).
      if (schema == null) return;
      let bySchema = validations.get(schema);
      if (!bySchema) validations.set(schema, (bySchema = new WeakMap()));
      const known = bySchema.get(documentAST);
      const hit = known?.find((v) => sameRules(v, rules));
      if (hit) {
        setResult(hit.result as never);
        return;
      }
      const made = [...(rules ?? [])];
      const names = made.map((rule) => rule.name);
      const byDocument = bySchema;
      return ({ result }) => {
        if (result == null) return;
        const list = byDocument.get(documentAST) ?? [];
        if (list.length >= MAX_RULE_SETS) list.shift();
        list.push({ rules: made, names, result });
        byDocument.set(documentAST, list);
      };
    },
  };
}

/** The same rules: the same functions (graphql's own rules), or functions of the same names (a rule made anew). */
function sameRules(known: Validated, rules: readonly ValidationRule[] | undefined): boolean {
  const count = rules?.length ?? 0;
  if (known.names.length !== count) return false;
  for (let i = 0; i < count; i++) {
    const rule = rules![i]!;
    if (rule !== known.rules[i] && rule.name !== known.names[i]) return false;
  }
  return true;
}
