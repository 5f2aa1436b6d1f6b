/**
 * Writes schema.graphql (the plain schema) and schema.subgraph.graphql (the
 * Federation subgraph, FEDERATION=true) from the Pothos schema: the code is
 * the source of truth, the SDL files its checked-in artifacts.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printSchemaSDL, printSubgraphSDL } from '../src/schema/sdl.js';

for (const [file, sdl] of [
  ['schema.graphql', printSchemaSDL()],
  ['schema.subgraph.graphql', printSubgraphSDL()],
] as const) {
  const target = fileURLToPath(new URL(`../${file}`, import.meta.url));
  writeFileSync(target, sdl);
  console.log(`wrote ${target}`);
}
