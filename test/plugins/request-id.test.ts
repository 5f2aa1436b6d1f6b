/** The request ids the gateway makes (plugins/request-id.ts): random version-4 UUIDs, each one new. */
import { describe, expect, it } from 'vitest';
import { newRequestId } from '../../src/plugins/request-id.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('newRequestId', () => {
  it('makes version-4 UUIDs, none twice, across many refills of its random bytes', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const id = newRequestId();
      expect(id).toMatch(UUID_V4);
      seen.add(id);
    }
    expect(seen.size).toBe(5000);
  });

  it('spreads its random hex digits over every value', () => {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++)
      for (const digit of newRequestId().replace(/-/g, '').slice(0, 12))
        counts.set(digit, (counts.get(digit) ?? 0) + 1);
    expect(counts.size).toBe(16);
    for (const n of counts.values()) expect(n).toBeGreaterThan(1000); // 1,500 expected for each
  });
});
