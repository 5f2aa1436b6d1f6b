/** The tags the emulator starts with. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { accountProblem, attrProblem, tagProblem, type UserTags } from '../tim/wire.js';
import type { AttributeSeed } from './attributes.js';
import type { EmulatorOptions } from './types.js';

/** Resolves from both src/emulator (tsx) and dist/emulator (compiled) to the repository's data/. */
const DEMO_USERS_FILE = new URL('../../data/demo-users.json', import.meta.url);
const DEMO_ATTRIBUTES_FILE = new URL('../../data/demo-attributes.json', import.meta.url);

export async function loadSeed(seed: EmulatorOptions['seed'] = 'demo'): Promise<UserTags[]> {
  if (seed === 'empty') return [];
  if (seed !== 'demo') return checkSeed(seed, 'the seed option');
  const file = fileURLToPath(DEMO_USERS_FILE);
  return checkSeed(JSON.parse(await readFile(file, 'utf8')) as unknown, file);
}

/** A seed the real service could hold: well-formed accounts and tags (the holding limits are not checked). */
function checkSeed(seed: unknown, source: string): UserTags[] {
  if (!Array.isArray(seed)) throw new TypeError(`${source}: the seed must be an array of {To_Account, Tags}`);
  for (const user of seed as Array<Partial<UserTags>>) {
    const problem =
      typeof user?.To_Account !== 'string'
        ? 'To_Account is not a string'
        : !Array.isArray(user.Tags) || !user.Tags.every((t) => typeof t === 'string')
          ? 'Tags is not an array of strings'
          : (accountProblem(user.To_Account) ?? user.Tags.map(tagProblem).find((p) => p !== null) ?? null);
    if (problem) throw new TypeError(`${source}: seed entry ${JSON.stringify(user)}: ${problem}`);
  }
  return seed as UserTags[];
}

/** The attribute names and values the emulator starts with: the demo's, or none. */
export async function loadAttributeSeed(
  seed: EmulatorOptions['attributes'] | EmulatorOptions['seed'],
): Promise<AttributeSeed> {
  if (seed !== 'demo')
    return typeof seed === 'object' && !Array.isArray(seed)
      ? checkAttributeSeed(seed, 'the attributes option')
      : { AttrNames: {}, UserAttrs: [] };
  const file = fileURLToPath(DEMO_ATTRIBUTES_FILE);
  return checkAttributeSeed(JSON.parse(await readFile(file, 'utf8')) as AttributeSeed, file);
}

/** Names and values the real service could hold: 1 to 50 bytes each, values only for named attributes. */
function checkAttributeSeed(seed: AttributeSeed, source: string): AttributeSeed {
  const names = new Set(Object.values(seed.AttrNames ?? {}));
  for (const name of names) {
    const problem = attrProblem(name);
    if (problem) throw new TypeError(`${source}: attribute name ${JSON.stringify(name)} ${problem}`);
  }
  for (const user of seed.UserAttrs ?? []) {
    for (const [name, value] of Object.entries(user.Attrs)) {
      if (!names.has(name))
        throw new TypeError(`${source}: ${user.To_Account} holds ${name}, which the seed does not name`);
      const problem = attrProblem(value);
      if (problem) throw new TypeError(`${source}: the ${name} of ${user.To_Account} ${problem}`);
    }
  }
  return { AttrNames: seed.AttrNames ?? {}, UserAttrs: seed.UserAttrs ?? [] };
}
