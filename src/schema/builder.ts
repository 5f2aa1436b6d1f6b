/** The one SchemaBuilder; every type file registers itself on it. */
import SchemaBuilder from '@pothos/core';
import type { GatewayContext } from './context.js';

export const builder = new SchemaBuilder<{
  Context: GatewayContext;
  DefaultFieldNullability: false;
  Scalars: { ID: { Input: string; Output: string } };
}>({ defaultFieldNullability: false });
