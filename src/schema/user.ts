/** `User`, `Query.user` and `Query.users`: resolvers only ask the request's loader. */
import type { GraphQLError } from 'graphql';
import type { UserWrite } from '../upstream/writes.js';
import { builder } from './builder.js';
import type { GatewayContext } from './context.js';
import { toGraphQLError } from './errors.js';

export interface UserShape {
  id: string;
  /** Set by a mutation whose write for this user failed: its tags and attributes must not be reported. */
  writeError?: GraphQLError;
}

/**
 * A mutation's users, from the upstream's per-user outcome: a written user is
 * read again past the request's loaders; a user whose write is not confirmed
 * carries the failure, with `failedIds`, at each of its fields.
 */
export function usersAfterWrite(writes: readonly UserWrite[], ctx: GatewayContext): UserShape[] {
  return writes.map((write) => {
    ctx.tags.clear(write.id);
    ctx.attributes.clear(write.id);
    if (!write.failure) return { id: write.id };
    const writeError = toGraphQLError(write.failure, { failedIds: write.failedIds }) as GraphQLError;
    return { id: write.id, writeError };
  });
}

export const User = builder.objectRef<UserShape>('User').implement({
  description: 'A Tencent IM account and its push tags and attributes.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'The Tencent IM account (UserID).' }),
    tags: t.field({
      type: ['String'],
      nullable: true,
      description:
        "The user's tags; [] when none. null only when the lookup failed, with the reason in `errors` at this path.",
      resolve: (user, _args, ctx) => {
        if (user.writeError) throw user.writeError;
        return ctx.tags.load(user.id);
      },
    }),
  }),
});

builder.queryType({
  fields: (t) => ({
    user: t.field({
      type: User,
      description: 'One user, by Tencent IM account (UserID). A user with no tags has tags: [].',
      args: { id: t.arg.id({ required: true }) },
      resolve: (_root, { id }, ctx) => ({ id: ctx.ids.admit([id], 'id')[0]! }),
    }),
    users: t.field({
      type: [User],
      description: 'Many users, in the order asked, duplicates included.',
      args: { ids: t.arg.idList({ required: true }) },
      resolve: (_root, { ids }, ctx) => ctx.ids.admit(ids, 'ids').map((id) => ({ id })),
    }),
  }),
});
