/** Issue 10: a collector that is away costs spans, never requests or a slow stop; a bad endpoint stops the start. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { startRig } from '../helpers/gateway.js';
import { freePort } from '../helpers/process.js';

describe('tracing with no collector listening', () => {
  it('serves requests and stops within a few seconds', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const rig = await startRig({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint },
      emulator: { seed: [{ To_Account: 'u1', Tags: ['t'] }] },
    });
    const res = await rig.query('{ user(id: "u1") { tags } }');
    expect(res.data).toEqual({ user: { tags: ['t'] } });
    const started = Date.now();
    await rig.close();
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('refuses an endpoint that is not an http(s) URL, naming the variable', () => {
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(ConfigError);
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318/' }).tracing).toEqual({
      endpoint: 'http://otel:4318',
      serviceName: 'tim-tags-graphql',
    });
  });
});
