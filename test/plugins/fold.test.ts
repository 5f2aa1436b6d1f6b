/**
 * foldPlugins runs several plugins' parse, validate and execute hooks as envelop runs them one
 * by one: the same plugins, run by envelop unfolded and folded, must leave the same trace of
 * calls and the same results.
 */
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import {
  buildSchema,
  execute,
  GraphQLError,
  parse,
  specifiedRules,
  validate,
  type ExecutionArgs,
  type ValidationRule,
} from 'graphql';
import { envelop, type Plugin } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { foldPlugins, takeApart } from '../../src/plugins/fold.js';

const schema = buildSchema('type Query { hello: String, other: Int }');
const rootValue = { hello: 'world', other: 1 };
/** graphql-js's functions and the schema, as yoga's engine plugin gives them. */
const engine: Plugin = {
  onEnveloped: ({ setSchema }) => setSchema(schema),
  onParse: ({ setParseFn }) => setParseFn(parse),
  onValidate: ({ setValidationFn }) => setValidationFn(validate),
  onExecute: ({ setExecuteFn }) => setExecuteFn(execute as never),
};

/** A plugin that records what it saw and changes each phase the way real plugins do. */
function recording(name: string, log: string[], opts: { stop?: boolean } = {}): Plugin {
  const namedRule: ValidationRule = () => ({});
  Object.defineProperty(namedRule, 'name', { value: `rule-${name}` });
  return {
    onParse({ parseFn, setParseFn, params }) {
      log.push(`${name} parse sees ${(parseFn as { by?: string }).by ?? 'graphql'}`);
      const wrapped = Object.assign((...args: Parameters<typeof parse>) => parseFn(...args), { by: name });
      setParseFn(wrapped);
      void params;
      return ({ result, replaceParseResult }) => {
        log.push(`${name} after parse sees ${(result as { note?: string }).note ?? 'plain'}`);
        replaceParseResult(Object.assign({ ...result }, { note: name }));
      };
    },
    onValidate({ params, addValidationRule, validateFn, setValidationFn }) {
      const rules = (params.rules ?? [])
        .map((r: ValidationRule) => r.name)
        .filter((n: string) => n.startsWith('rule-'));
      log.push(`${name} validate sees [${rules.join(',')}] by ${(validateFn as { by?: string }).by ?? 'graphql'}`);
      addValidationRule(namedRule);
      setValidationFn(Object.assign((...args: Parameters<typeof validate>) => validateFn(...args), { by: name }));
      return ({ valid, result, setResult }) => {
        log.push(`${name} after validate: ${valid} ${result.length}`);
        setResult([...result, new GraphQLError(`from ${name}`)]);
      };
    },
    onExecute({ executeFn, setExecuteFn, setResultAndStopExecution }) {
      log.push(`${name} execute sees ${(executeFn as { by?: string }).by ?? 'graphql'}`);
      setExecuteFn(Object.assign((args: ExecutionArgs) => executeFn(args), { by: name }));
      if (opts.stop) setResultAndStopExecution({ data: { stoppedBy: name } });
      return {
        onExecuteDone({ result, setResult }) {
          log.push(`${name} done sees ${JSON.stringify((result as { data?: unknown }).data)}`);
          setResult({ data: { ...(result as { data?: object }).data, [name]: true } });
        },
      };
    },
  };
}

/** Runs parse, validate and execute through envelop with these plugins; what came out, and the trace. */
async function run(make: (log: string[]) => Plugin[]) {
  const log: string[] = [];
  const getEnveloped = envelop({
    plugins: [engine, ...make(log), { onExecute: () => void log.push('after the fold') }],
  });
  const { parse, validate, execute, schema: s } = getEnveloped({});
  const document = parse('{ hello }');
  const errors = validate(s, document, specifiedRules);
  const result = await execute({ schema: s, document, rootValue, contextValue: {} });
  return {
    log,
    note: (document as { note?: string }).note,
    errors: errors.map((e: GraphQLError) => e.message),
    result,
  };
}

describe('foldPlugins', () => {
  it('runs the hooks in order, each seeing what the ones before it left, as envelop does', async () => {
    const make = (log: string[]) => [recording('a', log), recording('b', log), recording('c', log)];
    const unfolded = await run(make);
    const folded = await run((log) => foldPlugins(make(log)));
    expect(folded).toEqual(unfolded);
    // The trace is the real one: b saw a's functions and rules, after-hooks saw the results before them.
    expect(unfolded.log).toContain('b parse sees a');
    expect(unfolded.log).toContain('c validate sees [rule-a,rule-b] by b');
    expect(unfolded.log).toContain('b after parse sees a');
    expect(unfolded.errors).toEqual(['from a', 'from b', 'from c']);
    expect(unfolded.result).toEqual({ data: { hello: 'world', a: true, b: true, c: true } });
  });

  it('stops at setResultAndStopExecution: the hooks after it, folded or not, do not run', async () => {
    const make = (log: string[]) => [recording('a', log), recording('b', log, { stop: true }), recording('c', log)];
    const unfolded = await run(make);
    const folded = await run((log) => foldPlugins(make(log)));
    expect(folded).toEqual(unfolded);
    expect(unfolded.log.some((line) => line.startsWith('c execute'))).toBe(false);
    expect(unfolded.log).not.toContain('after the fold');
    expect(unfolded.result).toEqual({ data: { stoppedBy: 'b', a: true, b: true } });
  });

  it('is the same when the rule list starts empty', async () => {
    const make = (log: string[]) => [recording('a', log), recording('b', log)];
    const runWithoutRules = async (plugins: (log: string[]) => Plugin[]) => {
      const log: string[] = [];
      const { parse, validate } = envelop({
        plugins: [engine, ...plugins(log)],
      })({});
      validate(schema, parse('{ hello }'));
      return log;
    };
    expect(await runWithoutRules((log) => foldPlugins(make(log)))).toEqual(await runWithoutRules(make));
  });

  it('keeps each plugin’s other hooks, in order, in plugins after the fold', () => {
    const onRequestParse = () => {};
    const onSubscribe = () => {};
    const [folded, ...rest] = foldPlugins([
      { onExecute: () => {}, onRequestParse },
      { onValidate: () => {} },
      { onParse: () => {}, onSubscribe },
    ]);
    expect(Object.keys(folded!).sort()).toEqual(['onExecute', 'onParse', 'onValidate']);
    expect(rest).toEqual([{ onRequestParse }, { onSubscribe }]);
  });

  it('refuses what it cannot take apart, and a hook that returns a promise', async () => {
    expect(() => foldPlugins([{ onEnveloped: () => {} }])).toThrow(/onEnveloped/);
    const [folded] = foldPlugins([{ onExecute: async () => {} }]);
    const { parse, execute } = envelop({
      plugins: [engine, folded!],
    })({});
    await expect(async () => execute({ schema, document: parse('{ hello }'), rootValue })).rejects.toThrow(
      /returned a promise/,
    );
  });

  it('folds context hooks: each sees the context the ones before it extended, and a break skips the rest', async () => {
    const contextOf = async (make: (log: string[]) => Plugin[]) => {
      const log: string[] = [];
      const { contextFactory } = envelop({
        plugins: [engine, ...make(log), { onContextBuilding: () => void log.push('after the fold') }],
      })({ start: true });
      const context = await contextFactory();
      return { log, context };
    };
    const extending = (name: string, log: string[], opts: { stop?: boolean } = {}): Plugin => ({
      onContextBuilding({ context, extendContext, breakContextBuilding }) {
        log.push(`${name} sees ${Object.keys(context).sort().join(',')}`);
        extendContext({ [name]: true });
        if (opts.stop) breakContextBuilding();
        return ({ context: built }) => void log.push(`${name} done sees ${Object.keys(built).sort().join(',')}`);
      },
    });
    const make = (log: string[]) => [extending('a', log), extending('b', log)];
    const unfolded = await contextOf(make);
    expect(await contextOf((log) => foldPlugins(make(log)))).toEqual(unfolded);
    expect(unfolded.log).toEqual([
      'a sees start',
      'b sees a,start',
      'after the fold',
      'a done sees a,b,start',
      'b done sees a,b,start',
    ]);
    const stopping = (log: string[]) => [extending('a', log, { stop: true }), extending('b', log)];
    const stopped = await contextOf(stopping);
    expect(await contextOf((log) => foldPlugins(stopping(log)))).toEqual(stopped);
    expect(stopped.log).toEqual(['a sees start']);
  });

  it('keeps onPluginInit after the fold for what may sit anywhere; a plugin it adds is refused at start', async () => {
    const seen: unknown[] = [];
    const handler = ({ error }: { error: unknown }) => void seen.push(error);
    const plugins = foldPlugins([
      { onPluginInit: ({ registerContextErrorHandler }) => registerContextErrorHandler(handler) },
      {
        onContextBuilding: () => {
          throw new Error('no context');
        },
      },
    ]);
    const { contextFactory } = envelop({ plugins: [engine, ...plugins] })({});
    await expect(async () => contextFactory()).rejects.toThrow('no context');
    expect(seen).toEqual([new Error('no context')]);
    const adding = foldPlugins([{ onPluginInit: ({ addPlugin }) => addPlugin({}), onParse: () => {} }]);
    expect(() => envelop({ plugins: [engine, ...adding] })).toThrow(/adds a plugin/);
  });

  it("takes a plugin apart into its own hooks and the plugins it adds, in envelop's order", () => {
    const onRequest = () => {};
    const added: Plugin = { onParse: () => {} };
    expect(takeApart({ onRequest, onPluginInit: ({ addPlugin }) => addPlugin(added) })).toEqual([{ onRequest }, added]);
    expect(() => takeApart({ onRequest })).toThrow(/adds no plugins/);
  });

  it('takes graphql-armor apart into the plugins it adds, which fold', async () => {
    const armor = takeApart(EnvelopArmorPlugin({ maxAliases: { n: 1 } }) as Plugin);
    expect(armor.length).toBeGreaterThanOrEqual(5);
    const errorsOf = (plugins: Plugin[], source: string) => {
      const { parse, validate } = envelop({
        plugins: [engine, ...plugins],
      })({});
      try {
        return validate(schema, parse(source), specifiedRules).map((e: GraphQLError) => e.message);
      } catch (err) {
        return [`thrown: ${(err as Error).message}`];
      }
    };
    const aliased = '{ a: hello b: hello }';
    expect(errorsOf(foldPlugins(armor), aliased)).toEqual(errorsOf(armor, aliased));
    expect(errorsOf(armor, aliased)).toEqual([expect.stringMatching(/Aliases limit of 1 exceeded/)]);
    expect(errorsOf(foldPlugins(armor), '{ a: hello }')).toEqual([]);
  });
});
