/**
 * Several plugins' parse, validate and execute hooks, run as one plugin's. Envelop calls every
 * such hook of every plugin for every request, each with a payload and setter closures of its
 * own, and walks execute hooks and their `onExecuteDone` through its promise helpers, which wrap
 * every step in a few objects: the gateway's own checks (armor's limits, list bounds,
 * authorisation, error codes, the deadline) cost a seventh of what a single-user request
 * allocated, while doing nothing on the hot path but pass.
 *
 * Folded, they run as envelop runs them, in the plugins' order: each hook sees the parse,
 * validation and execute functions as the hooks before it left them, the rules they added, the
 * result they set; `setResultAndStopExecution` skips the hooks after it, folded or not; after-
 * hooks run in order, each seeing the result as the one before left it. Only synchronous hooks
 * can be folded (all of these are): one that returns a promise is a mistake, and throws.
 *
 * Hooks of other kinds (a request's HTTP hooks, `onSubscribe`) are not folded: each plugin keeps
 * them, in a plugin of its own after the fold, in the same order.
 */
import type { Plugin } from 'graphql-yoga';

type ParseHook = NonNullable<Plugin['onParse']>;
type ValidateHook = NonNullable<Plugin['onValidate']>;
type ExecuteHook = NonNullable<Plugin['onExecute']>;
type ExecuteHookResult = Exclude<Awaited<ReturnType<ExecuteHook>>, void>;
type ExecuteDone = NonNullable<ExecuteHookResult['onExecuteDone']>;
type ExecuteDoneResult = Exclude<Awaited<ReturnType<ExecuteDone>>, void>;

const FOLDED = ['onParse', 'onValidate', 'onExecute'] as const;
/** Hooks that change how envelop is put together: a plugin with one cannot be taken apart. */
const UNFOLDABLE = ['onPluginInit', 'onEnveloped', 'onSchemaChange', 'instrumentation'] as const;

export function foldPlugins(plugins: readonly Plugin[]): Plugin[] {
  for (const [i, plugin] of plugins.entries())
    for (const hook of UNFOLDABLE)
      if (plugin[hook]) throw new TypeError(`foldPlugins: plugin #${i} has ${hook}, which cannot be folded`);
  const parse = plugins.flatMap((p) => (p.onParse ? [p.onParse] : []));
  const validate = plugins.flatMap((p) => (p.onValidate ? [p.onValidate] : []));
  const execute = plugins.flatMap((p) => (p.onExecute ? [p.onExecute] : []));
  const folded: Plugin = {};
  if (parse.length > 0) folded.onParse = foldParse(parse);
  if (validate.length > 0) folded.onValidate = foldValidate(validate);
  if (execute.length > 0) folded.onExecute = foldExecute(execute);
  const rest = plugins.flatMap((plugin) => {
    const others: Plugin = { ...plugin };
    for (const hook of FOLDED) delete others[hook];
    return Object.keys(others).length > 0 ? [others] : [];
  });
  return [folded, ...rest];
}

/** The plugins a plugin made only of others (graphql-armor's) adds when envelop starts it. */
export function pluginsAddedBy(plugin: Plugin): Plugin[] {
  const { onPluginInit, ...rest } = plugin;
  if (!onPluginInit || Object.keys(rest).length > 0)
    throw new TypeError('pluginsAddedBy: not a plugin made only of others');
  const added: Plugin[] = [];
  void onPluginInit({
    plugins: [],
    addPlugin: (p) => void added.push(p),
    setSchema: () => {
      throw new TypeError('pluginsAddedBy: the plugin sets a schema');
    },
    registerContextErrorHandler: () => {
      throw new TypeError('pluginsAddedBy: the plugin handles context errors');
    },
  });
  return added;
}

function foldParse(hooks: ParseHook[]): ParseHook {
  return (outer) => {
    const afters = callAll(hooks, shared(outer, 'setParseFn', 'parseFn'));
    return afters && ((outerAfter) => callAll(afters, shared(outerAfter, 'replaceParseResult', 'result')));
  };
}

function foldValidate(hooks: ValidateHook[]): ValidateHook {
  return (outer) => {
    const params = { ...outer.params };
    const payload = shared(outer, 'setValidationFn', 'validateFn', {
      params,
      addValidationRule: (rule) => {
        // Envelop starts the rule list when the first rule is added to none; the next hooks see that list.
        const listed = outer.params.rules !== undefined;
        outer.addValidationRule(rule);
        if (!listed) (params.rules ??= []).push(rule);
      },
    });
    const afters = callAll(hooks, payload);
    return afters && ((outerAfter) => callAll(afters, shared(outerAfter, 'setResult', 'result')));
  };
}

function foldExecute(hooks: ExecuteHook[]): ExecuteHook {
  return (outer) => {
    let stopped = false;
    const payload = shared(outer, 'setExecuteFn', 'executeFn', {
      setResultAndStopExecution: (result) => {
        stopped = true;
        outer.setResultAndStopExecution(result);
      },
    });
    let dones: ExecuteDone[] | undefined;
    for (let i = 0; i < hooks.length; i++) {
      const result = hooks[i]!(payload);
      if (isThenable(result)) throw new TypeError(`foldPlugins: onExecute hook #${i} returned a promise`);
      if (result?.onExecuteDone) (dones ??= []).push(result.onExecuteDone);
      if (stopped) break;
    }
    return dones ? { onExecuteDone: foldExecuteDone(dones) } : undefined;
  };
}

function foldExecuteDone(dones: ExecuteDone[]): ExecuteDone {
  return (outer) => {
    const payload = shared(outer, 'setResult', 'result');
    let streams: ExecuteDoneResult[] | undefined;
    for (let i = 0; i < dones.length; i++) {
      const result = dones[i]!(payload);
      if (isThenable(result)) throw new TypeError(`foldPlugins: onExecuteDone hook #${i} returned a promise`);
      if (result) (streams ??= []).push(result);
    }
    if (!streams) return;
    // A streamed result (none of the gateway's): each value through every onNext, in order, then every onEnd.
    const nexts = streams.flatMap((s) => (s.onNext ? [s.onNext] : []));
    const ends = streams.flatMap((s) => (s.onEnd ? [s.onEnd] : []));
    return {
      onNext: async (next) => {
        const nextPayload = shared(next, 'setResult', 'result');
        for (const onNext of nexts) await onNext(nextPayload);
      },
      onEnd: () => {
        for (const onEnd of ends) onEnd();
      },
    };
  };
}

/** Calls each hook with the payload, in order; what they returned (after-hooks), or undefined for none. */
function callAll<P, R>(hooks: ReadonlyArray<(payload: P) => R | void>, payload: P): Exclude<R, void>[] | undefined {
  let returned: Exclude<R, void>[] | undefined;
  for (const hook of hooks) {
    const r = hook(payload);
    if (r) (returned ??= []).push(r as Exclude<R, void>);
  }
  return returned;
}

/**
 * One payload for all the folded hooks, as envelop's own with `extra` in it: its `setter` (a
 * function or a result) also changes the payload's own `field`, so each hook sees what the hooks
 * before it left.
 */
function shared<P, S extends keyof P>(outer: P, setter: S, field: keyof P, extra?: Partial<P>): P {
  const set = outer[setter] as (value: unknown) => void;
  const payload: P = {
    ...outer,
    ...extra,
    [setter]: (value: unknown) => {
      payload[field] = value as P[keyof P];
      set(value);
    },
  };
  return payload;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}
