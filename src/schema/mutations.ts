/**
 * The tag mutations. Each validates everything before any upstream call,
 * writes in calls that fit the upstream (planned in tim/tags.ts), then reads
 * the users' tags afresh: the answer shows the state after the write.
 *
 * The upstream is not transactional. One mutation may take several calls
 * (more than 100 users, or more than 10 tags for a user), each applied or
 * refused on its own, and nothing can undo a call that went through. So a
 * mutation is not all-or-nothing, and the answer says per user what happened:
 * - a user all of whose calls succeeded is read again and shows its tags
 *   after the write;
 * - a user any of whose calls failed has `tags: null` and an error at its
 *   path with the TIM code (`timErrorCode`) and `failedIds`: the users that
 *   same failure left unwritten (see usersAfterWrite). The union of every
 *   `failedIds` is exactly the users whose write is not confirmed; everyone
 *   else was written (an error without `failedIds` is a failed read after a
 *   write that went through).
 * "Not confirmed" is not "untouched": with 25 tags in three calls, the first
 * call may have landed before the second failed, and a call that timed out may
 * have been applied without its answer arriving. That is why a failed user's
 * tags are not shown from before the write, and why the cache drops them all
 * the same.
 * Nothing reports success for a write that did not happen.
 *
 * Retries are safe because every write here is idempotent: adding a tag a user
 * holds, removing one it does not hold, or clearing a user with no tags
 * changes nothing. The scheduler retries a call on the retryable codes
 * (UpstreamScheduler.send); a client given `failedIds` may send the same
 * mutation again (or just for those ids) and reach the state it asked for.
 * Idempotent is not commutative: a retry that lands after another client's
 * write to the same user wins over it, as any last write does.
 */
import type { GraphQLError } from 'graphql';
import { planAccountCalls, planTagWrites } from '../tim/tags.js';
import { MAX_TAGS_PER_ACCOUNT, tagProblem, type UserTags } from '../tim/wire.js';
import type { WriteOutcome } from '../upstream/scheduler.js';
import { builder } from './builder.js';
import type { GatewayContext } from './context.js';
import { badInput, toGraphQLError } from './errors.js';
import { User, type UserShape } from './user.js';

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
      throw badInput(`The tag list for user ${JSON.stringify(account)} is empty`, { argument: 'input', id: account });
    for (const tag of tags) {
      const problem = tagProblem(tag);
      if (problem) {
        throw badInput(
          `Tag ${JSON.stringify(tag)} for user ${JSON.stringify(account)} ${problem} (a tag is 1 to 50 bytes)`,
          {
            argument: 'input',
            id: account,
            tag,
          },
        );
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
        `User ${JSON.stringify(account)} is given ${tags.size} tags; a user may hold at most ${MAX_TAGS_PER_ACCOUNT}`,
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

/**
 * The users named, in input order and each once. A user any of whose calls
 * failed carries that call's error instead of tags; the others are read again,
 * past any cache.
 *
 * Each error names, in `failedIds`, the users its failure left unwritten (the
 * users of the failed call, or the one account an `ErrorList` entry refused),
 * not every failed user of the mutation: with mutation-wide lists on every
 * error, 1,000 failed users would carry a million ids (11 MB and more) in one
 * answer, just when the upstream is struggling. The union of the errors'
 * `failedIds` is every user not written; every other user was written.
 */
function usersAfterWrite(accounts: string[], outcomes: WriteOutcome[], ctx: GatewayContext): UserShape[] {
  const failures = new Map<string, Error>();
  for (const o of outcomes) {
    for (const a of o.accounts) {
      const error = o.error ?? o.accountErrors.get(a);
      if (error && !failures.has(a)) failures.set(a, error);
    }
  }
  const ordered = [...new Set(accounts)];
  const failedWith = new Map<Error, string[]>();
  for (const account of ordered) {
    const failure = failures.get(account);
    if (!failure) continue;
    const group = failedWith.get(failure);
    if (group) group.push(account);
    else failedWith.set(failure, [account]);
  }
  return ordered.map((id) => {
    ctx.tags.clear(id);
    const failure = failures.get(id);
    if (!failure) return { id };
    const writeError = toGraphQLError(failure, { failedIds: failedWith.get(failure) }) as GraphQLError;
    return { id, writeError };
  });
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
        const outcomes = await ctx.services.scheduler.write(
          'im_add_tag',
          planTagWrites(writes),
          ctx.deadline,
          ctx.trace,
        );
        return usersAfterWrite(
          writes.map((w) => w.To_Account),
          outcomes,
          ctx,
        );
      },
    }),
    removeUserTags: t.field({
      type: [User],
      description:
        'Removes tags from users. Returns the users, in input order and each once, with their tags after the write.',
      args: { input: t.arg({ type: [UserTagsInput], required: true }) },
      resolve: async (_root, { input }, ctx) => {
        const writes = checkUserTags(input, ctx, { holdingLimit: false });
        const outcomes = await ctx.services.scheduler.write(
          'im_remove_tag',
          planTagWrites(writes),
          ctx.deadline,
          ctx.trace,
        );
        return usersAfterWrite(
          writes.map((w) => w.To_Account),
          outcomes,
          ctx,
        );
      },
    }),
    removeAllUserTags: t.field({
      type: [User],
      description:
        'Removes every tag of the users named. Returns them, in input order and each once, with tags: [] when written.',
      args: { ids: t.arg.idList({ required: true }) },
      resolve: async (_root, { ids }, ctx) => {
        const accounts = checkIds(ids, ctx);
        const outcomes = await ctx.services.scheduler.write(
          'im_remove_all_tags',
          planAccountCalls(accounts),
          ctx.deadline,
          ctx.trace,
        );
        return usersAfterWrite(accounts, outcomes, ctx);
      },
    }),
  }),
});
