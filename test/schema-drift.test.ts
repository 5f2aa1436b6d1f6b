/**
 * schema.graphql and schema.subgraph.graphql are generated from the Pothos schema (`npm run schema`); this fails
 * when either drifts apart from the code.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { printSchemaSDL, printSubgraphSDL } from '../src/schema/sdl.js';
import { ROOT } from './helpers/paths.js';

it('schema.graphql matches the code (run `npm run schema` after changing the schema)', () => {
  expect(readFileSync(join(ROOT, 'schema.graphql'), 'utf8')).toBe(printSchemaSDL());
});

it('schema.subgraph.graphql matches the code (run `npm run schema` after changing the schema)', () => {
  expect(readFileSync(join(ROOT, 'schema.subgraph.graphql'), 'utf8')).toBe(printSubgraphSDL());
});

it('keeps the plain schema free of federation, and makes User an entity in the subgraph', () => {
  expect(printSchemaSDL()).not.toMatch(/_entities|_service|@key|@link/);
  const subgraph = printSubgraphSDL();
  expect(subgraph).toContain('@link(url: "https://specs.apollo.dev/federation/v2');
  expect(subgraph).toMatch(/type User\s+@key\(fields: "id"\)/);
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
