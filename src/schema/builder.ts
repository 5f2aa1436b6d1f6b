/**
 * The one SchemaBuilder; every type file registers itself on it. Its type
 * registrations are declarations, not state: the plain schema and the
 * federation subgraph (index.ts) are both built from them.
 */
import SchemaBuilder from '@pothos/core';
import DirectivesPlugin from '@pothos/plugin-directives';
import FederationPlugin from '@pothos/plugin-federation';
import type { GatewayContext } from './context.js';

export const builder = new SchemaBuilder<{
  Context: GatewayContext;
  DefaultFieldNullability: false;
  Scalars: { ID: { Input: string; Output: string } };
}>({ plugins: [DirectivesPlugin, FederationPlugin], defaultFieldNullability: false });
