/**
 * The phase order of the gateway's plugins holds only because every one of them runs inside the one
 * fold (src/plugins/fold.ts), while yoga's own plugins keep their fixed places around it. A plugin
 * added to createYoga beside the fold would run its parse, validate or execute hook after all of the
 * gateway's, wherever it was meant to go: this reads yoga's final plugin list of a real gateway and
 * requires that the only phase hooks outside the fold are those a bare yoga server has too.
 */
import { createYoga, type Plugin } from 'graphql-yoga';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FOLDED, isFold } from '../../src/plugins/fold.js';
import { schema } from '../../src/schema/index.js';
import { startRig, type TestRig } from '../helpers/gateway.js';

/** Which phase hooks a plugin has, as a short signature ("onParse+onExecute"); '' for none. */
const phasesOf = (plugin: Plugin) => FOLDED.filter((hook) => typeof plugin[hook] === 'function').join('+');
const pluginsOf = (yoga: unknown) => (yoga as { plugins: Array<Plugin | false | null | undefined> }).plugins;
const withPhases = (plugins: ReturnType<typeof pluginsOf>) =>
  plugins.filter((p): p is Plugin => !!p && phasesOf(p) !== '');

describe("yoga's final plugin list", () => {
  let rig: TestRig;
  beforeAll(async () => {
    rig = await startRig();
  });
  afterAll(async () => {
    await rig.close();
  });

  it("runs every phase hook of the gateway inside the one fold, right after yoga's engine", () => {
    const phased = withPhases(pluginsOf(rig.gateway.yoga));
    expect(phased.filter(isFold)).toHaveLength(1);
    // Yoga's engine plugin (graphql-js's functions) comes first, as createYoga puts it; then the fold.
    expect(isFold(phased[1]!)).toBe(true);
    expect(phasesOf(phased[1]!)).toBe('onContextBuilding+onParse+onValidate+onExecute');
  });

  it("leaves outside the fold only the phase hooks of yoga's own plugins, in their places", () => {
    const outside = withPhases(pluginsOf(rig.gateway.yoga)).filter((p) => !isFold(p));
    // A yoga server with the gateway's options that bear on its own plugins, and no plugins of ours.
    const bare = createYoga({
      schema,
      maskedErrors: { isDev: false },
      batching: false,
      parserAndValidationCache: false,
      multipart: false,
      landingPage: false,
      graphiql: false,
    });
    const own = withPhases(pluginsOf(bare));
    expect(own.length).toBeGreaterThan(1);
    expect(outside.map(phasesOf)).toEqual(own.map(phasesOf));
  });
});
