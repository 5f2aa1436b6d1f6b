/**
 * The gateway's scripts start node with src/runtime.ts's NODE_FLAGS (V8 sizes the young generation
 * only at start, so the process cannot set them itself); the bench starts its gateways with the same.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../src/runtime.js';
import { gatewayFlags } from '../../bench/processes.js';

const scripts = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    scripts: Record<string, string>;
  }
).scripts;

describe('node flags', () => {
  it('are what npm start and npm run start:prod pass to node', () => {
    expect(NODE_FLAGS.length).toBeGreaterThan(0);
    for (const name of ['start', 'start:prod']) expect(scripts[name]).toBe(`node ${NODE_FLAGS.join(' ')} dist/main.js`);
  });

  it("are what the bench starts a build's gateways with, and none for a build without them", async () => {
    // The sources stand in for this checkout's dist/, which a clean clone has not built yet.
    expect(await gatewayFlags(new URL('../../src/', import.meta.url).href)).toEqual([...NODE_FLAGS]);
    expect(await gatewayFlags(new URL('../', import.meta.url).href)).toEqual([]);
  });
});
