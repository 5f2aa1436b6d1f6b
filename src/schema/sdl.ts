import { printSubgraphSchema } from '@apollo/subgraph';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema, subgraphSchema } from './index.js';

/** The schema as checked-in SDL: sorted, so the file changes only when the schema does. */
export function printSchemaSDL(): string {
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}

/** The subgraph SDL a router composes (what `_service { sdl }` answers): federation directives included. */
export function printSubgraphSDL(): string {
  return `${printSubgraphSchema(subgraphSchema())}\n`;
}
