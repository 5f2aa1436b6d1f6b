/**
 * Imports every type file (each registers itself on the builder) and builds
 * the schemas from those registrations: the plain one, and the Apollo
 * Federation v2 subgraph that FEDERATION=true serves. Both are immutable
 * values, so every gateway of a process may share them.
 */
import type { GraphQLSchema } from 'graphql';
import { builder } from './builder.js';
import './user.js';
import './mutations.js';
import './attributes.js';
import './push.js';
import './federation.js';

/** Federation v2 with the directives this schema uses (`@key`); v2.6 is what the plugin and composers document. */
export const FEDERATION_LINK = 'https://specs.apollo.dev/federation/v2.6';

export const schema = builder.toSchema({ sortSchema: false });

let subgraph: GraphQLSchema | undefined;

/**
 * The plain schema with `_service` and `_entities`, and `User @key(fields: "id")`: made when first
 * asked for, so that a gateway without FEDERATION=true does not hold a second schema.
 */
export function subgraphSchema(): GraphQLSchema {
  return (subgraph ??= builder.toSubGraphSchema({ linkUrl: FEDERATION_LINK }));
}
