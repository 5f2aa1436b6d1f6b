/**
 * The app's attribute names (slot -> name), which every attribute write and
 * push audience is checked against before any write call. Read once and kept
 * briefly; dropped after a rename through this gateway and after TIM answers
 * 90033 (a name it does not know), and read afresh before a name is refused,
 * so a rename through another gateway never refuses good input for long.
 *
 * `rename` reads, merges and writes the whole map (im_set_attr_name replaces
 * it); renames of one gateway run one at a time, so two of them never lose
 * one another's slots.
 */
import { attrNamesBody, readAttrNames } from '../tim/attributes.js';
import type { AttemptLoop } from './attempt.js';
import { AttributeNameConflict } from './errors.js';

/** How long the names are kept before they are read again. */
export const ATTRIBUTE_NAMES_TTL_MS = 10_000;

export class AttributeNames {
  private cached: { slots: Map<number, string>; readAt: number } | null = null;
  /** The read in flight, shared by every caller that needs the names meanwhile. */
  private reading: Promise<Map<number, string>> | null = null;
  /** Counts forgets: a read begun before one never stores what it read. */
  private generation = 0;
  /** The tail of this gateway's renames: each waits for the one before. */
  private renames: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly attempts: AttemptLoop,
    private readonly ttlMs = ATTRIBUTE_NAMES_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Slot -> name, slot order. Rejects with the read's error (TimError, RateLimitedError). */
  async slots(deadline: number): Promise<ReadonlyMap<number, string>> {
    if (this.cached && this.now() - this.cached.readAt < this.ttlMs) return this.cached.slots;
    return this.read(deadline);
  }

  /** Name -> slot of every named attribute. Rejects as `slots` does. */
  async known(deadline: number): Promise<ReadonlyMap<string, number>> {
    return new Map([...(await this.slots(deadline))].map(([slot, name]) => [name, slot]));
  }

  /**
   * The names among `names` the app has not named, in the order given; [] when
   * all are known. A name missing from the kept copy is looked for once more in
   * a fresh read before it is called unknown. Rejects as `slots` does.
   */
  async unknown(names: readonly string[], deadline: number): Promise<string[]> {
    const missing = (known: ReadonlyMap<number, string>) => {
      const named = new Set(known.values());
      return [...new Set(names)].filter((n) => !named.has(n));
    };
    const kept = this.cached;
    const first = missing(await this.slots(deadline));
    if (first.length === 0 || kept === null) return first;
    return missing(await this.read(deadline));
  }

  /** Forgets the kept names: the next use reads them again (after a rename elsewhere, or a 90033). */
  forget(): void {
    this.cached = null;
    this.generation++;
  }

  /**
   * Names the slots given, keeping every other slot's name, and resolves with
   * every named slot after the write. Rejects with AttributeNameConflict when
   * the result would give one name to two slots, or with the call's error.
   */
  rename(given: ReadonlyMap<number, string>, deadline: number): Promise<ReadonlyMap<number, string>> {
    const run = this.renames.then(() => this.renameNow(given, deadline));
    this.renames = run.catch(() => {});
    return run;
  }

  private async renameNow(given: ReadonlyMap<number, string>, deadline: number): Promise<Map<number, string>> {
    // Its own read, never one already in flight: that one may have left before the last rename's write.
    const merged = readAttrNames(await this.attempts.call('im_get_attr_name', {}, deadline));
    for (const [slot, name] of given) merged.set(slot, name);
    const sorted = new Map([...merged].sort(([a], [b]) => a - b));
    const slotOf = new Map<string, number>();
    for (const [slot, name] of sorted) {
      const other = slotOf.get(name);
      if (other !== undefined) throw new AttributeNameConflict(name, other, slot);
      slotOf.set(name, slot);
    }
    this.forget();
    try {
      await this.attempts.call('im_set_attr_name', { AttrNames: attrNamesBody(sorted) }, deadline);
    } finally {
      this.forget(); // reads made while the write was in flight may have seen either map
    }
    this.cached = { slots: sorted, readAt: this.now() };
    return sorted;
  }

  private read(deadline: number): Promise<Map<number, string>> {
    this.reading ??= (async () => {
      try {
        const readAt = this.now();
        const generation = this.generation;
        const slots = readAttrNames(await this.attempts.call('im_get_attr_name', {}, deadline));
        if (generation === this.generation) this.cached = { slots, readAt };
        return slots;
      } finally {
        this.reading = null;
      }
    })();
    return this.reading;
  }
}
