/** The in-process tag cache: a read that began before a drop never stores what it saw. */
import { describe, expect, it } from 'vitest';
import { MemoryTagCache } from '../../src/upstream/cache.js';

const later = () => new Promise((r) => setTimeout(r, 5));

describe('MemoryTagCache', () => {
  it('serves what was stored, and drops it on invalidate', async () => {
    const cache = new MemoryTagCache(60_000);
    await cache.setMany(new Map([['a', ['x']]]), await cache.beginRead());
    expect(await cache.getMany(['a', 'b'])).toEqual(new Map([['a', ['x']]]));
    await cache.invalidate(['a']);
    expect(await cache.getMany(['a'])).toEqual(new Map());
  });

  it('does not store a read that began before a drop', async () => {
    const cache = new MemoryTagCache(60_000);
    const before = await cache.beginRead();
    await cache.invalidate(['a']);
    await cache.setMany(new Map([['a', ['old']]]), before);
    expect(await cache.getMany(['a'])).toEqual(new Map());
  });

  it('does not store it either when more accounts were dropped since than it keeps tombstones for', async () => {
    const cache = new MemoryTagCache(60_000, 3);
    const before = await cache.beginRead();
    await cache.invalidate(['a']);
    await cache.invalidate(['b', 'c', 'd']); // a bulk write: a's tombstone is pushed out
    await cache.setMany(new Map([['a', ['old']]]), before);
    expect(await cache.getMany(['a'])).toEqual(new Map());

    // A read that began after every drop is stored as usual.
    await later();
    const after = await cache.beginRead();
    await cache.setMany(new Map([['a', ['new']]]), after);
    expect(await cache.getMany(['a'])).toEqual(new Map([['a', ['new']]]));
  });
});
