/** The tags the emulator starts with. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { accountProblem, tagProblem, type UserTags } from '../tim/wire.js';
import type { EmulatorOptions } from './types.js';

/** Resolves from both src/emulator (tsx) and dist/emulator (compiled) to the repository's data/. */
const DEMO_USERS_FILE = new URL('../../data/demo-users.json', import.meta.url);

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
