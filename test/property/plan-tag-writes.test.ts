/** planTagWrites and planAccountCalls, for any input: every call fits the upstream and says exactly what was asked. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planAccountCalls, planTagWrites } from '../../src/tim/tags.js';
import type { UserTags } from '../../src/tim/wire.js';

/** Small pools so that accounts repeat and tags collide; big lists so that both limits are crossed. */
const account = fc.integer({ min: 0, max: 260 }).map((i) => `u${i}`);
const tag = fc.integer({ min: 0, max: 40 }).map((i) => `t${i}`);
const entry = fc.record({ To_Account: account, Tags: fc.array(tag, { minLength: 1, maxLength: 30 }) });
const input = fc.array(entry, { minLength: 0, maxLength: 250 });

/** What the input asks for, per account: the union of its tags. */
function asked(entries: readonly UserTags[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const { To_Account, Tags } of entries) {
    const tags = out.get(To_Account) ?? new Set<string>();
    for (const t of Tags) tags.add(t);
    out.set(To_Account, tags);
  }
  return out;
}

describe('planTagWrites', () => {
  it('sends every asked (account, tag) exactly once, in calls of at most 100 accounts and 10 tags an account', () => {
    fc.assert(
      fc.property(input, (entries) => {
        const calls = planTagWrites(entries);
        const sent = new Map<string, string[]>();
        for (const call of calls) {
          expect(call.length).toBeGreaterThan(0);
          expect(call.length).toBeLessThanOrEqual(100);
          expect(new Set(call.map((u) => u.To_Account)).size).toBe(call.length);
          for (const { To_Account, Tags } of call) {
            expect(Tags.length).toBeGreaterThan(0);
            expect(Tags.length).toBeLessThanOrEqual(10);
            sent.set(To_Account, [...(sent.get(To_Account) ?? []), ...Tags]);
          }
        }
        const want = asked(entries);
        expect(new Set(sent.keys())).toEqual(new Set(want.keys()));
        for (const [a, tags] of sent) {
          expect(tags.length).toBe(new Set(tags).size); // no tag sent twice for one account
          expect(new Set(tags)).toEqual(want.get(a));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('uses no more calls than the fullest account needs rounds, times the account batches of each round', () => {
    fc.assert(
      fc.property(input, (entries) => {
        const want = asked(entries);
        const rounds = Math.max(0, ...[...want.values()].map((t) => Math.ceil(t.size / 10)));
        const bound = Array.from({ length: rounds }, (_, r) => {
          const inRound = [...want.values()].filter((t) => t.size > r * 10).length;
          return Math.ceil(inRound / 100);
        }).reduce((a, b) => a + b, 0);
        expect(planTagWrites(entries)).toHaveLength(bound);
      }),
      { numRuns: 200 },
    );
  });
});

describe('planAccountCalls', () => {
  it('names each distinct account once, in ceil(n / 100) calls of at most 100', () => {
    fc.assert(
      fc.property(fc.array(account, { maxLength: 400 }), (accounts) => {
        const calls = planAccountCalls(accounts);
        const distinct = new Set(accounts);
        expect(calls).toHaveLength(Math.ceil(distinct.size / 100));
        for (const call of calls) expect(call.length).toBeLessThanOrEqual(100);
        const flat = calls.flat();
        expect(flat.length).toBe(distinct.size);
        expect(new Set(flat)).toEqual(distinct);
      }),
      { numRuns: 200 },
    );
  });
});
