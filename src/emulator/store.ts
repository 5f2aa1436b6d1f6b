/**
 * The emulator's tag data: each account's tags as an insertion-ordered set, and how many
 * accounts hold each tag so the app-wide distinct count is always at hand.
 *
 * Writes check the whole call against the holding limits before touching anything, so a
 * refused call changes nothing, as the real service behaves.
 */
import { MAX_TAGS_PER_ACCOUNT, MAX_TAGS_PER_APP, type UserTags } from '../tim/wire.js';

export class TagStore {
  private readonly tagsByAccount = new Map<string, Set<string>>();
  /** Tag -> number of accounts holding it; its size is the app's distinct tag count. */
  private readonly holders = new Map<string, number>();

  constructor(seed: readonly UserTags[] = []) {
    for (const user of seed) this.setTags(user.To_Account, user.Tags);
  }

  /** Whether the account was seeded or written (what strictAccounts calls existing). */
  has(account: string): boolean {
    return this.tagsByAccount.has(account);
  }

  getTags(account: string): string[] {
    const held = this.tagsByAccount.get(account);
    return held ? [...held] : [];
  }

  /** Replaces an account's tags as given, without the holding limits (for seeds and tests). */
  setTags(account: string, tags: readonly string[]): void {
    this.removeAll([account]);
    const held = this.tagsByAccount.get(account)!;
    for (const tag of tags) this.hold(held, tag);
  }

  accounts(): string[] {
    return [...this.tagsByAccount.keys()];
  }

  snapshot(): Map<string, string[]> {
    return new Map([...this.tagsByAccount].map(([account, held]) => [account, [...held]]));
  }

  distinctTags(): number {
    return this.holders.size;
  }

  /**
   * Adds every entry's tags, or nothing: returns why the call would break a holding limit
   * (an account over 100 tags, the app over 1,000 distinct tags), or null once applied.
   */
  add(entries: readonly UserTags[]): string | null {
    const gains = this.gainsOf(entries);
    const newToApp = new Set<string>();
    for (const [account, gained] of gains) {
      const total = (this.tagsByAccount.get(account)?.size ?? 0) + gained.size;
      if (total > MAX_TAGS_PER_ACCOUNT) {
        return `account ${JSON.stringify(account)} would hold ${total} tags, over the limit of ${MAX_TAGS_PER_ACCOUNT} tags per account`;
      }
      for (const tag of gained) if (!this.holders.has(tag)) newToApp.add(tag);
    }
    const distinct = this.holders.size + newToApp.size;
    if (newToApp.size > 0 && distinct > MAX_TAGS_PER_APP) {
      return `the app would hold ${distinct} distinct tags, over the limit of ${MAX_TAGS_PER_APP} distinct tags per app`;
    }
    for (const [account, gained] of gains) {
      const held = this.accountSet(account);
      for (const tag of gained) this.hold(held, tag);
    }
    return null;
  }

  remove(entries: readonly UserTags[]): void {
    for (const { To_Account, Tags } of entries) {
      const held = this.accountSet(To_Account);
      for (const tag of Tags) this.release(held, tag);
    }
  }

  /** Clears the accounts' tags; they go on existing (a write creates an account). */
  removeAll(accounts: readonly string[]): void {
    for (const account of accounts) {
      const held = this.accountSet(account);
      for (const tag of held) this.release(held, tag);
    }
  }

  /** Per account, the tags the entries would add that it does not hold yet. */
  private gainsOf(entries: readonly UserTags[]): Map<string, Set<string>> {
    const gains = new Map<string, Set<string>>();
    for (const { To_Account, Tags } of entries) {
      const held = this.tagsByAccount.get(To_Account);
      let gained = gains.get(To_Account);
      if (!gained) gains.set(To_Account, (gained = new Set()));
      for (const tag of Tags) if (!held?.has(tag)) gained.add(tag);
    }
    return gains;
  }

  private accountSet(account: string): Set<string> {
    let held = this.tagsByAccount.get(account);
    if (!held) this.tagsByAccount.set(account, (held = new Set()));
    return held;
  }

  private hold(held: Set<string>, tag: string): void {
    if (held.has(tag)) return;
    held.add(tag);
    this.holders.set(tag, (this.holders.get(tag) ?? 0) + 1);
  }

  private release(held: Set<string>, tag: string): void {
    if (!held.delete(tag)) return;
    const left = (this.holders.get(tag) ?? 1) - 1;
    if (left > 0) this.holders.set(tag, left);
    else this.holders.delete(tag);
  }
}
