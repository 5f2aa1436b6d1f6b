/** Imports every type file (each registers itself on the builder) and exports the schema. */
import { builder } from './builder.js';
import './user.js';
import './mutations.js';
import './push.js';

export const schema = builder.toSchema({ sortSchema: false });
