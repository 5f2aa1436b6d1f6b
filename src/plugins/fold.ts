/**
 * Several plugins' context, parse, validate and execute hooks, run as one plugin's. Envelop calls every
 * such hook of every plugin for every request, each with a payload and setter closures of its
 * own, and walks execute hooks and their `onExecuteDone` through its promise helpers, which wrap
 * every step in a few objects: the gateway's own checks (armor's limits, list bounds,
 * authorisation, error codes, the deadline) cost a seventh of what a single-user request
 * allocated, while doing nothing on the hot path but pass.
 *
 * The gateway folds all its plugins: their phase hooks are the ones between yoga's own (its engine
 * first, its mutation-via-GET check, error masking and validation-error status after), and the
 * plugins in between have HTTP hooks only, so one fold keeps every phase's order.
 *
 * Folded, they run as envelop runs them, in the plugins' order: each hook sees the parse,
 * validation and execute functions as the hooks before it left them, the rules they added, the
 * result they set; `setResultAndStopExecution` skips the hooks after it, folded or not; after-
 * hooks run in order, each seeing the result as the one before left it. Only synchronous hooks
 * can be folded (all of these are): one that returns a promise is a mistake, and throws.
 *
 * `breakContextBuilding` skips the context hooks after it. Hooks of other kinds (a request's HTTP
 * hooks, `onSubscribe`, `onPluginInit`) are not folded: each plugin keeps them, in a plugin of its
 * own after the fold, in the same order.
 */
import type { Plugin } from 'graphql-yoga';

type ContextHook = NonNullable<Plugin['onContextBuilding']>;
type ContextDone = Exclude<Awaited<ReturnType<ContextHook>>, void>;
type ParseHook = NonNullable<Plugin['onParse']>;
type ValidateHook = NonNullable<Plugin['onValidate']>;
type ExecuteHook = NonNullable<Plugin['onExecute']>;
type ExecuteHookResult = Exclude<Awaited<ReturnType<ExecuteHook>>, void>;
type ExecuteDone = NonNullable<ExecuteHookResult['onExecuteDone']>;
type ExecuteDoneResult = Exclude<Awaited<ReturnType<ExecuteDone>>, void>;

/** The phase hooks foldPlugins folds (a plugin's others stay in a plugin of their own). */
export const FOLDED = ['onContextBuilding', 'onParse', 'onValidate', 'onExecute'] as const;
/** Hooks that change how envelop is put together: a plugin with one cannot be taken apart. */
const UNFOLDABLE = ['onEnveloped', 'onSchemaChange', 'instrumentation'] as const;

/** The plugins foldPlugins made, so that a check of yoga's final list can tell them apart from the rest. */
const folds = new WeakSet<Plugin>();

/** True for the one plugin foldPlugins made to run the phase hooks of the plugins it was given. */
export function isFold(plugin: Plugin): boolean {
  return folds.has(plugin);
}

export function foldPlugins(plugins: readonly Plugin[]): Plugin[] {
  for (const [i, plugin] of plugins.entries())
    for (const hook of UNFOLDABLE)
      if (plugin[hook]) throw new TypeError(`foldPlugins: plugin #${i} has ${hook}, which cannot be folded`);
  const context = plugins.flatMap((p) => (p.onContextBuilding ? [p.onContextBuilding] : []));
  const parse = plugins.flatMap((p) => (p.onParse ? [p.onParse] : []));
  const validate = plugins.flatMap((p) => (p.onValidate ? [p.onValidate] : []));
  const execute = plugins.flatMap((p) => (p.onExecute ? [p.onExecute] : []));
  const folded: Plugin = {};
  folds.add(folded);
  if (context.length > 0) folded.onContextBuilding = foldContext(context);
  if (parse.length > 0) folded.onParse = foldParse(parse);
  if (validate.length > 0) folded.onValidate = foldValidate(validate);
  if (execute.length > 0) folded.onExecute = foldExecute(execute);
  const rest = plugins.flatMap((plugin) => {
    const others: Plugin = { ...plugin };
    for (const hook of FOLDED) delete others[hook];
    if (plugin.onPluginInit) others.onPluginInit = initInPlace(plugin.onPluginInit);
    return Object.keys(others).length > 0 ? [others] : [];
  });
  return [folded, ...rest];
}

/**
 * A plugin whose `onPluginInit` only adds plugins (graphql-armor's, yoga's Prometheus plugin), as
 * the plugins envelop makes of it: its other hooks, then the plugins it adds, which envelop puts
 * right after it.
 */
export function takeApart(plugin: Plugin): Plugin[] {
  const { onPluginInit, ...own } = plugin;
  if (!onPluginInit) throw new TypeError('takeApart: the plugin adds no plugins');
  const added: Plugin[] = [];
  void onPluginInit({
    plugins: [],
    addPlugin: (p) => void added.push(p),
    setSchema: () => {
      throw new TypeError('takeApart: the plugin sets a schema');
    },
    registerContextErrorHandler: () => {
      throw new TypeError('takeApart: the plugin handles context errors');
    },
  });
  return Object.keys(own).length > 0 ? [own, ...added] : added;
}

/**
 * A plugin's `onPluginInit`, kept in its plugin after the fold: it may register a context error
 * handler (envelop's Prometheus plugin does), whose place does not matter; a plugin it added, or
 * a schema it set, would take the place of the plugin's folded hooks, and is refused at start.
 */
function initInPlace(init: NonNullable<Plugin['onPluginInit']>): NonNullable<Plugin['onPluginInit']> {
  return (payload) =>
    init({
      ...payload,
      addPlugin: () => {
        throw new TypeError('foldPlugins: a folded plugin adds a plugin in onPluginInit; take it apart first');
      },
      setSchema: () => {
        throw new TypeError('foldPlugins: a folded plugin sets the schema in onPluginInit');
      },
    });
}

function foldContext(hooks: ContextHook[]): ContextHook {
  return (outer) => {
    let broken = false;
    const breakContextBuilding = outer.breakContextBuilding;
    outer.breakContextBuilding = () => {
      broken = true;
      breakContextBuilding();
    };
    let dones: ContextDone[] | undefined;
    for (let i = 0; i < hooks.length; i++) {
      const result = hooks[i]!(outer);
      if (isThenable(result)) throw new TypeError(`foldPlugins: onContextBuilding hook #${i} returned a promise`);
      if (result) (dones ??= []).push(result);
      if (broken) break;
    }
    return (
      dones &&
      ((done) => {
        for (let i = 0; i < dones.length; i++)
          if (isThenable(dones[i]!(done)))
            throw new TypeError(`foldPlugins: onContextBuilding's after-hook #${i} returned a promise`);
      })
    );
  };
}

function foldParse(hooks: ParseHook[]): ParseHook {
  return (outer) => {
    const afters = callAll(hooks, shared(outer, 'setParseFn', 'parseFn'));
    return afters && ((outerAfter) => callAll(afters, shared(outerAfter, 'replaceParseResult', 'result')));
  };
}

function foldValidate(hooks: ValidateHook[]): ValidateHook {
  return (outer) => {
    const { addValidationRule } = outer;
    // Envelop starts its rule list when the first rule is added to none; the next hooks see that list.
    const unlisted = outer.params.rules === undefined;
    const payload = shared(outer, 'setValidationFn', 'validateFn', {
      addValidationRule: (rule) => {
        addValidationRule(rule);
        if (unlisted) (outer.params.rules ??= []).push(rule);
      },
    });
    const afters = callAll(hooks, payload);
    return afters && ((outerAfter) => callAll(afters, shared(outerAfter, 'setResult', 'result')));
  };
}

function foldExecute(hooks: ExecuteHook[]): ExecuteHook {
  return (outer) => {
    let stopped = false;
    const { setResultAndStopExecution } = outer;
    const payload = shared(outer, 'setExecuteFn', 'executeFn', {
      setResultAndStopExecution: (result) => {
        stopped = true;
        setResultAndStopExecution(result);
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
 * One payload for all the folded hooks: envelop's own, made for this one call (so changed in place
 * rather than copied), with `extra` in it and its `setter` (a function or a result) also changing
 * the payload's own `field`, so each hook sees what the hooks before it left.
 */
function shared<P, S extends keyof P>(outer: P, setter: S, field: keyof P, extra?: Partial<P>): P {
  const set = outer[setter] as (value: unknown) => void;
  if (extra) Object.assign(outer as object, extra);
  (outer as Record<S, unknown>)[setter] = (value: unknown) => {
    outer[field] = value as P[keyof P];
    set(value);
  };
  return outer;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}
