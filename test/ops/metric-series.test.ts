/**
 * The request path's metric series (src/metrics.ts: histogramSeries, counterSeries) add to
 * prom-client's own values instead of going through its observe: what /metrics prints must be
 * exactly what prom-client's own children would have made of the same observations.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { counterSeries, histogramSeries } from '../../src/metrics.js';

function pair() {
  const make = () => {
    const registry = new Registry();
    const histogram = new Histogram({
      name: 'h_seconds',
      help: 'h',
      labelNames: ['operationType', 'statusCode'],
      buckets: [0, 0.005, 0.1, 1],
      registers: [registry],
    });
    const counter = new Counter({ name: 'c_total', help: 'c', labelNames: ['operationType'], registers: [registry] });
    return { registry, histogram, counter };
  };
  return { fast: make(), stock: make() };
}

describe('metric series', () => {
  it('print what prom-client prints for the same observations, across a reset', async () => {
    const { fast, stock } = pair();
    const labels = { operationType: 'query', statusCode: 200 };
    const h = histogramSeries(fast.histogram, labels);
    const c = counterSeries(fast.counter, { operationType: 'query' });
    const values = [0, 0.003, 0.005, 0.0051, 0.2, 1, 7.5, 0];
    const observe = () => {
      for (const v of values) {
        h.observe(v);
        stock.histogram.labels(labels).observe(v);
        c.inc();
        stock.counter.labels({ operationType: 'query' }).inc();
      }
    };
    observe();
    // Another series of the same metric, through prom-client itself, beside the fast one.
    fast.histogram.observe({ operationType: 'mutation', statusCode: 200 }, 0.05);
    stock.histogram.observe({ operationType: 'mutation', statusCode: 200 }, 0.05);
    expect(await fast.registry.metrics()).toBe(await stock.registry.metrics());
    expect(await fast.registry.metrics()).toContain('h_seconds_count{operationType="query",statusCode="200"} 8');

    fast.registry.resetMetrics();
    stock.registry.resetMetrics();
    expect(await fast.registry.metrics()).toBe(await stock.registry.metrics());
    observe();
    expect(await fast.registry.metrics()).toBe(await stock.registry.metrics());
    expect(await fast.registry.metrics()).toContain('c_total{operationType="query"} 8');
  });

  it('refuse what prom-client refuses', () => {
    const { fast } = pair();
    const h = histogramSeries(fast.histogram, { operationType: 'query', statusCode: 200 });
    h.observe(0.1);
    expect(() => h.observe(Number.NaN)).toThrow(TypeError);
    expect(() => histogramSeries(fast.histogram, { nope: 'x' })).toThrow();
  });
});
