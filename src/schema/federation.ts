/**
 * `User` as an Apollo Federation entity keyed by `id`. It is resolved the way
 * `users(ids:)` resolves a user: the id is admitted (checked and counted) and
 * becomes `{ id }`, and every field then asks the request's loaders. So N
 * representations cost ceil(N / 100) calls per command, coalesced like any
 * other lookup, and a field added to `User` works for `_entities` unchanged.
 * Only the subgraph schema (FEDERATION=true) has `_entities`; the plain schema
 * ignores the key.
 */
import { builder } from './builder.js';
import { User } from './user.js';

builder.asEntity(User, {
  key: builder.selection<{ id: string }>('id'),
  resolveReference: (reference, ctx) => ({ id: ctx.ids.admit([reference.id], 'representations')[0]! }),
});
