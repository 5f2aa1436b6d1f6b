/** Issue 4: the circuit breaker's states, on a fake clock. */
import { describe, expect, it } from 'vitest';
import { Circuit, type CircuitState } from '../../src/upstream/circuit.js';

function circuit(threshold = 3, cooldownMs = 1000) {
  let now = 0;
  const c = new Circuit({ threshold, cooldownMs }, () => now);
  const changes: CircuitState[] = [];
  c.onChange((s) => changes.push(s));
  return { c, changes, advance: (ms: number) => (now += ms) };
}

describe('Circuit', () => {
  it('opens after `threshold` failures in a row, and fails fast while open', () => {
    const { c, changes } = circuit();
    c.failure();
    c.failure();
    expect(c.state).toBe('closed');
    expect(c.allow()).toBe(true);
    c.failure();
    expect(c.state).toBe('open');
    expect(c.allow()).toBe(false);
    expect(changes).toEqual(['open']);
  });

  it('counts only failures in a row', () => {
    const { c } = circuit();
    for (let i = 0; i < 10; i++) {
      c.failure();
      c.failure();
      c.success();
    }
    expect(c.state).toBe('closed');
  });

  it('lets one probe through after the cooldown; its success closes the circuit', () => {
    const { c, changes, advance } = circuit();
    for (let i = 0; i < 3; i++) c.failure();
    advance(999);
    expect(c.state).toBe('open');
    advance(1);
    expect(c.state).toBe('half-open');
    expect(c.allow()).toBe(true);
    expect(c.allow()).toBe(false); // one probe at a time
    c.success();
    expect(c.state).toBe('closed');
    expect(c.allow()).toBe(true);
    expect(changes).toEqual(['open', 'closed']);
  });

  it('opens again for a whole cooldown when the probe fails', () => {
    const { c, changes, advance } = circuit();
    for (let i = 0; i < 3; i++) c.failure();
    advance(1000);
    expect(c.allow()).toBe(true);
    c.failure();
    expect(c.state).toBe('open');
    advance(999);
    expect(c.allow()).toBe(false);
    advance(1);
    expect(c.allow()).toBe(true);
    expect(changes).toEqual(['open', 'open']);
  });

  it('lets another probe through when one ends inconclusive', () => {
    const { c, advance } = circuit();
    for (let i = 0; i < 3; i++) c.failure();
    advance(1000);
    expect(c.allow()).toBe(true);
    c.inconclusive();
    expect(c.state).toBe('half-open');
    expect(c.allow()).toBe(true);
  });

  it('does not change its count on an inconclusive call', () => {
    const { c } = circuit();
    c.failure();
    c.failure();
    c.inconclusive();
    c.failure();
    expect(c.state).toBe('open');
  });

  it('rejects a threshold below one', () => {
    expect(() => new Circuit({ threshold: 0 })).toThrow(/positive integer, got 0/);
  });
});
