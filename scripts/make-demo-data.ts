/**
 * Writes data/demo-users.json, the emulator's default seed: 300 users with tags from a small,
 * realistic vocabulary, and data/demo-attributes.json: the app's attribute names (city, plan,
 * lang) and each user's values, read from the user's `city:`, `plan:` and `lang:` tags. A seeded PRNG makes the output the same on every run, so the file is
 * checked in and a test can regenerate it to catch drift.
 *
 *   npx tsx scripts/make-demo-data.ts
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface DemoUser {
  To_Account: string;
  Tags: string[];
}

export const DEMO_USERS_FILE = new URL('../data/demo-users.json', import.meta.url);
export const DEMO_ATTRIBUTES_FILE = new URL('../data/demo-attributes.json', import.meta.url);

/** The demo app's attribute slots. */
export const DEMO_ATTR_NAMES: Record<string, string> = { '0': 'city', '1': 'plan', '2': 'lang' };

export interface DemoAttributes {
  AttrNames: Record<string, string>;
  UserAttrs: Array<{ To_Account: string; Attrs: Record<string, string> }>;
}

/** Each user's attributes: the value of its first `name:value` tag for each named attribute; users with none are left out. */
export function makeDemoAttributes(users: readonly DemoUser[]): DemoAttributes {
  const names = Object.values(DEMO_ATTR_NAMES);
  const UserAttrs = users.flatMap(({ To_Account, Tags }) => {
    const Attrs: Record<string, string> = {};
    for (const tag of Tags) {
      const [name, value] = tag.split(':', 2);
      if (value && names.includes(name!) && !(name! in Attrs)) Attrs[name!] = value;
    }
    return Object.keys(Attrs).length > 0 ? [{ To_Account, Attrs }] : [];
  });
  return { AttrNames: DEMO_ATTR_NAMES, UserAttrs };
}

/** Names on one line, one user per line after. */
export function formatDemoAttributes(attributes: DemoAttributes): string {
  const users = attributes.UserAttrs.map((u) => `    ${JSON.stringify(u)}`).join(',\n');
  return `{\n  "AttrNames": ${JSON.stringify(attributes.AttrNames)},\n  "UserAttrs": [\n${users}\n  ]\n}\n`;
}

/** The named users the docs and tests talk about; frank deliberately has no tags. */
const NAMED_USERS: DemoUser[] = [
  { To_Account: 'alice', Tags: ['vip', 'lang:en', 'city:singapore', 'platform:ios', 'plan:pro'] },
  { To_Account: 'bob', Tags: ['lang:zh', 'city:shenzhen', 'platform:android'] },
  { To_Account: 'carol', Tags: ['beta-tester', 'lang:en', 'platform:web', 'newsletter'] },
  { To_Account: 'dave', Tags: ['lang:zh', 'plan:free'] },
  { To_Account: 'erin', Tags: ['lang:ja', 'city:tokyo', 'platform:ios', 'interest:music'] },
  { To_Account: 'frank', Tags: [] },
];

const GENERATED_USERS = 294;
/** With frank, 30 of the 300 users (10%) have no tags. */
const GENERATED_WITHOUT_TAGS = 29;

/** City -> the language most of its users choose. */
const CITIES: Record<string, string> = {
  'city:shenzhen': 'lang:zh',
  'city:beijing': 'lang:zh',
  'city:shanghai': 'lang:zh',
  'city:guangzhou': 'lang:zh',
  'city:hangzhou': 'lang:zh',
  'city:chengdu': 'lang:zh',
  'city:singapore': 'lang:en',
  'city:tokyo': 'lang:ja',
  'city:seoul': 'lang:ko',
  'city:london': 'lang:en',
  'city:san-francisco': 'lang:en',
  'city:berlin': 'lang:de',
};
const LANGUAGES = ['lang:zh', 'lang:en', 'lang:ja', 'lang:ko', 'lang:es', 'lang:de'];
const PLATFORMS = ['platform:ios', 'platform:android', 'platform:web', 'platform:macos', 'platform:windows'];
const PLANS = ['plan:free', 'plan:pro', 'plan:team', 'plan:enterprise'];
const INTERESTS = [
  'interest:gaming',
  'interest:music',
  'interest:sports',
  'interest:travel',
  'interest:food',
  'interest:tech',
  'interest:fashion',
  'interest:movies',
];
/** Flags and how often a user carries each. */
const FLAGS: Array<[string, number]> = [
  ['newsletter', 0.3],
  ['verified', 0.2],
  ['vip', 0.1],
  ['beta-tester', 0.08],
  ['early-adopter', 0.05],
  ['churn-risk', 0.05],
];

/** mulberry32: tiny, fast, and good enough to spread demo data. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeDemoUsers(seed = 20240601): DemoUser[] {
  const random = prng(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const users = NAMED_USERS.map((u) => ({ To_Account: u.To_Account, Tags: [...u.Tags] }));
  const withoutTags = sample(random, GENERATED_USERS, GENERATED_WITHOUT_TAGS);
  for (let i = 1; i <= GENERATED_USERS; i++) {
    const account = `user${String(i).padStart(3, '0')}`;
    users.push({ To_Account: account, Tags: withoutTags.has(i) ? [] : tagsForOneUser(random, pick) });
  }
  return users;
}

/** `count` distinct numbers from 1..n (a partial Fisher-Yates shuffle). */
function sample(random: () => number, n: number, count: number): Set<number> {
  const numbers = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (n - i));
    [numbers[i], numbers[j]] = [numbers[j]!, numbers[i]!];
  }
  return new Set(numbers.slice(0, count));
}

function tagsForOneUser(random: () => number, pick: <T>(items: readonly T[]) => T): string[] {
  const tags = new Set<string>();
  const city = random() < 0.7 ? pick(Object.keys(CITIES)) : null;
  // Most people use the language of their city; the rest are spread evenly.
  tags.add(city && random() < 0.85 ? CITIES[city]! : pick(LANGUAGES));
  if (city) tags.add(city);
  if (random() < 0.9) tags.add(pick(PLATFORMS));
  if (random() < 0.2) tags.add(pick(PLATFORMS));
  if (random() < 0.6) tags.add(pick(PLANS));
  const interests = Math.floor(random() * 3);
  for (let i = 0; i < interests; i++) tags.add(pick(INTERESTS));
  for (const [flag, share] of FLAGS) if (random() < share) tags.add(flag);
  return [...tags];
}

/** One user per line: readable in review, and diffs stay small. */
export function formatDemoUsers(users: readonly DemoUser[]): string {
  return `[\n${users.map((u) => `  ${JSON.stringify(u)}`).join(',\n')}\n]\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const users = makeDemoUsers();
  writeFileSync(DEMO_USERS_FILE, formatDemoUsers(users));
  const attributes = makeDemoAttributes(users);
  writeFileSync(DEMO_ATTRIBUTES_FILE, formatDemoAttributes(attributes));
  console.log(`wrote ${attributes.UserAttrs.length} users' attributes to ${fileURLToPath(DEMO_ATTRIBUTES_FILE)}`);
  const distinct = new Set(users.flatMap((u) => u.Tags)).size;
  console.log(`wrote ${users.length} users with ${distinct} distinct tags to ${fileURLToPath(DEMO_USERS_FILE)}`);
}
