/**
 * The parser and validation cache that takes yoga's place: a document is parsed and validated
 * once, a parse error is remembered as it was, and a validation result is reused only under the
 * rules it was made with.
 */
import { buildSchema, parse, specifiedRules, validate, type ValidationRule } from 'graphql';
import { envelop, type Plugin } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { useDocumentCache } from '../../src/plugins/document-cache.js';

const schema = buildSchema('type Query { hello: String }');

/**
 * graphql-js's parse and validate, counted, with an extra rule when `extraRule()` says so: the same
 * function each time, or (`anew`) a new one of the same name, as armor adds its rules.
 */
function gateway(extraRule: () => boolean = () => false, { anew = false } = {}) {
  const counts = { parse: 0, validate: 0 };
  const makeNoHello = (): ValidationRule =>
    function NoHello(context) {
      return {
        Field(node) {
          if (node.name.value === 'hello') context.reportError(new (class extends Error {})('no hello') as never);
        },
      };
    };
  const NoHello = makeNoHello();
  const plugins: Plugin[] = [
    {
      onEnveloped: ({ setSchema }) => setSchema(schema),
      onParse: ({ setParseFn }) =>
        setParseFn((...args) => {
          counts.parse++;
          return parse(...args);
        }),
      onValidate: ({ setValidationFn, addValidationRule }) => {
        setValidationFn((...args) => {
          counts.validate++;
          return validate(...args);
        });
        if (extraRule()) addValidationRule(anew ? makeNoHello() : NoHello);
      },
    },
    useDocumentCache(),
  ];
  const getEnveloped = envelop({ plugins });
  const run = (source: string) => {
    const { parse: parseFn, validate: validateFn } = getEnveloped({});
    return validateFn(schema, parseFn(source), specifiedRules).map((e: Error) => e.message);
  };
  return { run, counts };
}

describe('useDocumentCache', () => {
  it('parses and validates a document once, and answers the same after', () => {
    const { run, counts } = gateway();
    expect(run('{ hello }')).toEqual([]);
    expect(run('{ hello }')).toEqual([]);
    expect(run('{ nope }')).toEqual(['Cannot query field "nope" on type "Query".']);
    expect(run('{ nope }')).toEqual(['Cannot query field "nope" on type "Query".']);
    expect(counts).toEqual({ parse: 2, validate: 2 });
  });

  it('remembers a parse error and throws it again without parsing', () => {
    const { run, counts } = gateway();
    expect(() => run('{ hello')).toThrow(/Syntax Error/);
    expect(() => run('{ hello')).toThrow(/Syntax Error/);
    expect(counts.parse).toBe(1);
  });

  it('validates again under other rules, and reuses each result under its own', () => {
    let extra = false;
    const { run, counts } = gateway(() => extra);
    expect(run('{ hello }')).toEqual([]);
    extra = true;
    expect(run('{ hello }')).toEqual(['no hello']);
    extra = false;
    expect(run('{ hello }')).toEqual([]);
    extra = true;
    expect(run('{ hello }')).toEqual(['no hello']);
    expect(counts.validate).toBe(2);
  });

  it('reuses a result under a rule made anew for each request, told by its name', () => {
    const { run, counts } = gateway(() => true, { anew: true });
    expect(run('{ hello }')).toEqual(['no hello']);
    expect(run('{ hello }')).toEqual(['no hello']);
    expect(counts.validate).toBe(1);
  });
});
