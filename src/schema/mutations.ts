/**
 * The tag mutations. Each checks every argument before any upstream call,
 * then hands the write to the upstream layer, which plans it into calls and
 * says per user what happened (src/upstream/writes.ts); the answer reads the
 * users afresh, so it shows the state after the write.
 */
import { MAX_TAGS_PER_ACCOUNT, tagProblem, type UserTags } from '../tim/wire.js';
import { builder } from './builder.js';
import type { GatewayContext } from './context.js';
import { badInput, excerpt, quote } from './errors.js';
import { User, usersAfterWrite } from './user.js';

const UserTagsInput = builder.inputType('UserTagsInput', {
  description: 'Tags to add to, or remove from, one user.',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The Tencent IM account (UserID).' }),
    tags: t.stringList({ required: true, description: 'Tags of 1 to 50 UTF-8 bytes each; duplicates are sent once.' }),
  }),
});

/**
 * Checks every id and tag of a write; throws BAD_USER_INPUT naming the first
 * offender. For an add, `holdingLimit` also refuses a user given more distinct
 * tags than one user may hold (counted over every entry naming that user):
 * the upstream would take the first calls and refuse a later one, leaving a
 * part-written user. A remove may name any number: removing a tag not held
 * changes nothing.
 */
function checkUserTags(
  input: ReadonlyArray<{ id: string | number; tags: readonly string[] }>,
  ctx: GatewayContext,
  { holdingLimit }: { holdingLimit: boolean },
): UserTags[] {
  if (input.length === 0) throw badInput('input must name at least one user', { argument: 'input' });
  const out = input.map(({ id, tags }) => {
    const [account] = ctx.ids.admit([id], 'input', { refuseRequest: false }) as [string];
    if (tags.length === 0)
      throw badInput(`The tag list for user ${quote(account)} is empty`, { argument: 'input', id: account });
    for (const tag of tags) {
      const problem = tagProblem(tag);
      if (problem) {
        throw badInput(`Tag ${quote(tag)} for user ${quote(account)} ${problem} (a tag is 1 to 50 bytes)`, {
          argument: 'input',
          id: account,
          tag: excerpt(tag),
        });
      }
    }
    return { To_Account: account, Tags: [...tags] };
  });
  if (holdingLimit) checkHoldingLimit(out);
  return out;
}

function checkHoldingLimit(input: readonly UserTags[]): void {
  const given = new Map<string, Set<string>>();
  for (const { To_Account, Tags } of input) {
    const tags = given.get(To_Account) ?? new Set<string>();
    for (const tag of Tags) tags.add(tag);
    given.set(To_Account, tags);
  }
  for (const [account, tags] of given) {
    if (tags.size > MAX_TAGS_PER_ACCOUNT) {
      throw badInput(
        `User ${quote(account)} is given ${tags.size} tags; a user may hold at most ${MAX_TAGS_PER_ACCOUNT}`,
        {
          argument: 'input',
          id: account,
        },
      );
    }
  }
}

function checkIds(ids: ReadonlyArray<string | number>, ctx: GatewayContext): string[] {
  if (ids.length === 0) throw badInput('ids must name at least one user', { argument: 'ids' });
  return ctx.ids.admit(ids, 'ids', { refuseRequest: false });
}

builder.mutationType({
  fields: (t) => ({
    addUserTags: t.field({
      type: [User],
      description:
        'Adds tags to users. Returns the users, in input order and each once, with their tags after the write.',
      args: { input: t.arg({ type: [UserTagsInput], required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const writes = checkUserTags(input, ctx, { holdingLimit: true });
        return usersAfterWrite(await ctx.services.upstream.writes.addTags(writes, ctx.deadline, ctx.trace), ctx);
      },
    }),
    removeUserTags: t.field({
      type: [User],
      description:
        'Removes tags from users. Returns the users, in input order and each once, with their tags after the write.',
      args: { input: t.arg({ type: [UserTagsInput], required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const writes = checkUserTags(input, ctx, { holdingLimit: false });
        return usersAfterWrite(await ctx.services.upstream.writes.removeTags(writes, ctx.deadline, ctx.trace), ctx);
      },
    }),
    removeAllUserTags: t.field({
      type: [User],
      description:
        'Removes every tag of the users named. Returns them, in input order and each once, with tags: [] when written.',
      args: { ids: t.arg.idList({ required: true }) },
      resolve: async (_root, { ids }, ctx) => {
        const accounts = checkIds(ids, ctx);
        return usersAfterWrite(
          await ctx.services.upstream.writes.removeAllTags(accounts, ctx.deadline, ctx.trace),
          ctx,
        );
      },
    }),
  }),
});
