/**
 * The bench's users: 20,000 accounts with a few tags each, made the same way in
 * every process, so the load generator can draw ids the emulator holds.
 */
import type { AttributeSeed } from '../src/emulator/attributes.js';
import type { UserTags } from '../src/tim/wire.js';

export const USER_COUNT = 20_000;

const TAGS = [
  'vip',
  'beta-tester',
  'newsletter',
  'lang:en',
  'lang:zh',
  'lang:ja',
  'lang:ko',
  'lang:id',
  'platform:ios',
  'platform:android',
  'platform:web',
  'plan:free',
  'plan:pro',
  'plan:team',
  'city:singapore',
  'city:shenzhen',
  'city:tokyo',
  'city:seoul',
  'city:frankfurt',
  'city:jakarta',
];

/** `user00001` to `user20000`. */
export function accountOf(n: number): string {
  return `user${String(n).padStart(5, '0')}`;
}

/** Every account with 0 to 4 tags, picked by its number (no randomness: each run holds the same data). */
export function seedUsers(count = USER_COUNT): UserTags[] {
  return Array.from({ length: count }, (_, i) => {
    const n = i + 1;
    const tags = Array.from({ length: n % 5 }, (_, k) => TAGS[(n * 7 + k * 3) % TAGS.length]!);
    return { To_Account: accountOf(n), Tags: [...new Set(tags)] };
  });
}

/** The bench app's attribute names, and a value of each for most accounts (by number, as the tags). */
export function seedAttributes(count = USER_COUNT): AttributeSeed {
  const cities = ['sz', 'bj', 'sh', 'sg', 'tokyo'];
  const plans = ['free', 'pro', 'team'];
  return {
    AttrNames: { '0': 'city', '1': 'plan', '2': 'lang' },
    UserAttrs: Array.from({ length: count }, (_, i) => {
      const n = i + 1;
      const Attrs: Record<string, string> = { city: cities[n % cities.length]! };
      if (n % 3 !== 0) Attrs.plan = plans[n % plans.length]!;
      return { To_Account: accountOf(n), Attrs };
    }),
  };
}

/** The first `count` accounts, in order. */
export function firstAccounts(count: number): string[] {
  return Array.from({ length: count }, (_, i) => accountOf(i + 1));
}

/** `count` distinct accounts drawn at random from the first `pool`. */
export function randomAccounts(count: number, pool = USER_COUNT): string[] {
  const picked = new Set<string>();
  while (picked.size < count) picked.add(accountOf(1 + Math.floor(Math.random() * pool)));
  return [...picked];
}
