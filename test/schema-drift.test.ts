/** schema.graphql is generated from the Pothos schema (`npm run schema`); this fails when they drift apart. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { printSchemaSDL } from '../src/schema/sdl.js';
import { ROOT } from './helpers/paths.js';

it('schema.graphql matches the code (run `npm run schema` after changing the schema)', () => {
  expect(readFileSync(join(ROOT, 'schema.graphql'), 'utf8')).toBe(printSchemaSDL());
});

it('has the names and types CONTRACT.md fixes', () => {
  const sdl = printSchemaSDL();
  for (const line of [
    'user(id: ID!): User!',
    'users(ids: [ID!]!): [User!]!',
    'id: ID!',
    'tags: [String!]',
    'addUserTags(input: [UserTagsInput!]!): [User!]!',
    'removeUserTags(input: [UserTagsInput!]!): [User!]!',
    'removeAllUserTags(ids: [ID!]!): [User!]!',
    'tags: [String!]!',
  ]) {
    expect(sdl).toContain(line);
  }
});
