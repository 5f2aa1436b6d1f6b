/** Issue 11: TIM_MAX_QPS is per upstream command: writes never slow reads, attribute lookups never slow tag lookups. */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { mostInWindow } from '../../src/emulator/index.js';
import { callsOf, startRig, type TestRig } from '../helpers/gateway.js';

let rig: TestRig;
beforeAll(async () => {
  rig = await startRig({ env: { TIM_MAX_QPS: '2' } });
});
afterAll(() => rig.close());
beforeEach(() => rig.emulator.resetCalls());

const users = (n: number, from = 1) => Array.from({ length: n }, (_, i) => `user${String(from + i).padStart(3, '0')}`);

describe('one budget per command', () => {
  it('serves a read at once while a write waits for its own budget', async () => {
    // Three calls at two a second: the last waits about a second for its slot.
    const input = users(250).map((id) => ({ id, tags: ['budget-test'] }));
    const write = rig.query('mutation($input: [UserTagsInput!]!) { removeUserTags(input: $input) { id } }', { input });
    await new Promise((r) => setTimeout(r, 100)); // the write's first calls are out, the rest wait
    const started = Date.now();
    const read = await rig.query('{ user(id: "alice") { tags attributes { name } } }');
    expect(read.errors).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(400);
    const done = await write;
    expect(done.errors).toBeUndefined();
    const removes = callsOf(rig.emulator, 'im_remove_tag').map((c) => c.at);
    expect(removes).toHaveLength(3);
    expect(mostInWindow(removes, 1000)).toBeLessThanOrEqual(2);
  });

  it('spends the tag and the attribute budgets side by side', async () => {
    const started = Date.now();
    const res = await rig.query('query($ids: [ID!]!) { users(ids: $ids) { tags attributes { name } } }', {
      ids: users(250),
    });
    const took = Date.now() - started;
    expect(res.errors).toBeUndefined();
    const tags = callsOf(rig.emulator, 'im_get_tag').map((c) => c.at);
    const attrs = callsOf(rig.emulator, 'im_get_attr').map((c) => c.at);
    expect([tags.length, attrs.length]).toEqual([3, 3]);
    expect(mostInWindow(tags, 1000)).toBeLessThanOrEqual(2);
    expect(mostInWindow(attrs, 1000)).toBeLessThanOrEqual(2);
    // Three calls each at two a second is a second's wait; six calls on one budget would be two.
    expect(took).toBeGreaterThan(900);
    expect(took).toBeLessThan(1900);
  });
});
