/**
 * Any sequence of adds, removes, remove-alls and reads through the gateway
 * leaves the emulator's store equal to a model: one set of tags per user.
 * Every mutation's own answer and every read must show the model too, with
 * the tag cache on, so read-your-writes is checked at each step.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRig, type TestRig } from '../helpers/gateway.js';

interface UserOut {
  id: string;
  tags: string[] | null;
}
type Entry = { user: number; tags: string[] };
type Op =
  | { kind: 'add'; entries: Entry[] }
  | { kind: 'remove'; entries: Entry[] }
  | { kind: 'removeAll'; users: number[] }
  | { kind: 'read'; users: number[] };

/** Few users and few tags, so that operations collide; more than 10 tags, so that writes split. */
const USERS = 4;
const TAGS = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', '标签', 'x'.repeat(50)];

const user = fc.integer({ min: 0, max: USERS - 1 });
const tagList = fc.array(fc.constantFrom(...TAGS), { minLength: 1, maxLength: 14 });
const entries = fc.array(fc.record({ user, tags: tagList }), { minLength: 1, maxLength: 3 });
const users = fc.array(user, { minLength: 1, maxLength: 3 });
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: entries.map((e) => ({ kind: 'add' as const, entries: e })) },
  { weight: 3, arbitrary: entries.map((e) => ({ kind: 'remove' as const, entries: e })) },
  { weight: 1, arbitrary: users.map((u) => ({ kind: 'removeAll' as const, users: u })) },
  { weight: 1, arbitrary: users.map((u) => ({ kind: 'read' as const, users: u })) },
);
const initial = fc.array(fc.uniqueArray(fc.constantFrom(...TAGS), { maxLength: 6 }), {
  minLength: USERS,
  maxLength: USERS,
});

const ADD = 'mutation($input: [UserTagsInput!]!) { result: addUserTags(input: $input) { id tags } }';
const REMOVE = 'mutation($input: [UserTagsInput!]!) { result: removeUserTags(input: $input) { id tags } }';
const REMOVE_ALL = 'mutation($ids: [ID!]!) { result: removeAllUserTags(ids: $ids) { id tags } }';
const READ = 'query($ids: [ID!]!) { result: users(ids: $ids) { id tags } }';

let rig: TestRig;
let run = 0;

beforeAll(async () => {
  // The budgets are raised so that hundreds of small calls take a few seconds; rates have their own tests.
  rig = await startRig({
    env: { TAGS_CACHE_TTL_MS: '60000', TIM_MAX_QPS: '5000' },
    emulator: { seed: 'empty', maxCallsPerSecond: 5000 },
  });
});
afterAll(() => rig.close());

const sortedTags = (tags: Iterable<string>) => [...tags].sort();

describe('the write path against a model', () => {
  it('keeps the store, each answer and each read equal to a set of tags per user', async () => {
    await fc.assert(
      fc.asyncProperty(initial, fc.array(op, { minLength: 1, maxLength: 8 }), async (start, ops) => {
        // Fresh ids each run (shrinking included): the gateway has never read them, so its cache
        // holds nothing that the store reset below would make stale.
        const prefix = `r${++run}-`;
        const ids = Array.from({ length: USERS }, (_, i) => `${prefix}${i}`);
        rig.emulator.store.removeAll(ids);
        const model = new Map<string, Set<string>>();
        ids.forEach((id, i) => {
          rig.emulator.store.setTags(id, start[i]!);
          model.set(id, new Set(start[i]!));
        });

        for (const step of ops) {
          const named =
            step.kind === 'add' || step.kind === 'remove'
              ? step.entries.map((e) => ids[e.user]!)
              : step.users.map((u) => ids[u]!);
          let res;
          if (step.kind === 'add' || step.kind === 'remove') {
            const input = step.entries.map((e) => ({ id: ids[e.user]!, tags: e.tags }));
            res = await rig.query<{ result: UserOut[] }>(step.kind === 'add' ? ADD : REMOVE, { input });
            for (const e of input) {
              const held = model.get(e.id)!;
              for (const t of e.tags) {
                if (step.kind === 'add') held.add(t);
                else held.delete(t);
              }
            }
          } else if (step.kind === 'removeAll') {
            res = await rig.query<{ result: UserOut[] }>(REMOVE_ALL, { ids: named });
            for (const id of named) model.get(id)!.clear();
          } else {
            res = await rig.query<{ result: UserOut[] }>(READ, { ids: named });
          }
          expect(res.errors).toBeUndefined();
          // Mutations answer each user once, in input order; a read answers every id asked.
          const expectedIds = step.kind === 'read' ? named : [...new Set(named)];
          expect(res.data!.result.map((u) => u.id)).toEqual(expectedIds);
          for (const u of res.data!.result) expect(sortedTags(u.tags!)).toEqual(sortedTags(model.get(u.id)!));
        }

        for (const id of ids) expect(sortedTags(rig.emulator.store.getTags(id))).toEqual(sortedTags(model.get(id)!));
        const final = await rig.query<{ result: UserOut[] }>(READ, { ids });
        expect(final.errors).toBeUndefined();
        for (const u of final.data!.result) expect(sortedTags(u.tags!)).toEqual(sortedTags(model.get(u.id)!));
      }),
      { numRuns: 80 },
    );
  });
});
