/**
 * Tag and attribute writes: planned into calls that fit the upstream
 * (src/tim/tags.ts, src/tim/attributes.ts), sent one after another, and told
 * back per user.
 *
 * The upstream is not transactional. One write may take several calls (more
 * than 100 users, or more than 10 tags for a user), each applied or refused on
 * its own, and nothing can undo a call that went through. So the result says
 * per user what happened: a user all of whose calls succeeded was written; a
 * user any of whose calls failed carries that failure and, in `failedIds`, the
 * users that same failure left unwritten (the users of the failed call, or the
 * one account an `ErrorList` entry refused), not every failed user of the
 * write: with write-wide lists on every error, 1,000 failed users would carry
 * a million ids in one answer, just when the upstream is struggling. The union
 * of every `failedIds` is exactly the users whose write is not confirmed.
 * "Not confirmed" is not "untouched": a call that timed out may have been
 * applied, so the cache drops every user named, before the first call and
 * after the last, whatever happened.
 *
 * Retries (in the attempt loop) are safe because every write here is
 * idempotent: adding a tag held, removing one not held, setting a value held,
 * or clearing a user with nothing changes nothing. Idempotent is not
 * commutative: a retry landing after another client's write wins over it.
 */
import { planAttrRemovals, planAttrWrites } from '../tim/attributes.js';
import { accountsIn, type Command, type RequestOf } from '../tim/commands.js';
import { TimError } from '../tim/errors.js';
import { planAccountCalls, planTagWrites, readErrorList } from '../tim/tags.js';
import { TimCode, type UserAttrNames, type UserAttrs, type UserTags } from '../tim/wire.js';
import type { AttemptLoop } from './attempt.js';
import type { AttributeNames } from './attribute-names.js';
import type { RequestTrace } from './trace.js';

/** The write commands, each with a body of many users. */
export type WriteCommand = Extract<
  Command,
  'im_add_tag' | 'im_remove_tag' | 'im_remove_all_tags' | 'im_set_attr' | 'im_remove_attr'
>;

/** One write call: what it named and, when it failed, why. */
export interface WriteOutcome {
  accounts: string[];
  error?: Error;
  /** Accounts the upstream refused one by one (`ErrorList`), with their own errors. */
  accountErrors: Map<string, Error>;
}

/** One user's part of a write: written, or not confirmed, with why and who else that failure left unwritten. */
export type UserWrite = { id: string; failure?: undefined } | { id: string; failure: Error; failedIds: string[] };

/** What a write's cached values are dropped through (the reads of its command family). */
export interface Droppable {
  drop(accounts: readonly string[]): Promise<void>;
}

export interface WritesOptions {
  attempts: AttemptLoop;
  tags: Droppable;
  attributes: Droppable;
  attributeNames: AttributeNames;
}

export class Writes {
  constructor(private readonly opts: WritesOptions) {}

  addTags(input: readonly UserTags[], deadline: number, trace?: RequestTrace): Promise<UserWrite[]> {
    const bodies = planTagWrites(input).map((UserTags) => ({ UserTags }));
    return this.perUser(input, this.send('im_add_tag', bodies, deadline, trace));
  }

  removeTags(input: readonly UserTags[], deadline: number, trace?: RequestTrace): Promise<UserWrite[]> {
    const bodies = planTagWrites(input).map((UserTags) => ({ UserTags }));
    return this.perUser(input, this.send('im_remove_tag', bodies, deadline, trace));
  }

  removeAllTags(accounts: readonly string[], deadline: number, trace?: RequestTrace): Promise<UserWrite[]> {
    const bodies = planAccountCalls(accounts).map((To_Account) => ({ To_Account }));
    return this.perUser(
      accounts.map((To_Account) => ({ To_Account })),
      this.send('im_remove_all_tags', bodies, deadline, trace),
    );
  }

  /** Merges: a user's other attributes stay. */
  setAttributes(input: readonly UserAttrs[], deadline: number, trace?: RequestTrace): Promise<UserWrite[]> {
    const bodies = planAttrWrites(input).map((UserAttrs) => ({ UserAttrs }));
    return this.perUser(input, this.send('im_set_attr', bodies, deadline, trace));
  }

  removeAttributes(input: readonly UserAttrNames[], deadline: number, trace?: RequestTrace): Promise<UserWrite[]> {
    const bodies = planAttrRemovals(input).map((UserAttrs) => ({ UserAttrs }));
    return this.perUser(input, this.send('im_remove_attr', bodies, deadline, trace));
  }

  /**
   * Sends the calls one after another and says what became of each. Cached
   * values of every account named are dropped before the first call and
   * after the last. Never rejects.
   */
  async send<C extends WriteCommand>(
    command: C,
    bodies: ReadonlyArray<RequestOf<C>>,
    deadline: number,
    trace?: RequestTrace,
  ): Promise<WriteOutcome[]> {
    const cache = command === 'im_set_attr' || command === 'im_remove_attr' ? this.opts.attributes : this.opts.tags;
    const touched = bodies.flatMap((body) => accountsIn(command, body));
    await cache.drop(touched);
    const outcomes: WriteOutcome[] = [];
    try {
      for (const body of bodies) {
        const accounts = accountsIn(command, body);
        try {
          const answer = await this.opts.attempts.call(command, body, deadline, { traces: [trace] });
          outcomes.push({ accounts, accountErrors: readErrorList(answer) });
        } catch (error) {
          if (error instanceof TimError && error.code === TimCode.INVALID_ATTRIBUTE) this.opts.attributeNames.forget();
          outcomes.push({ accounts, error: error as Error, accountErrors: new Map() });
        }
      }
    } finally {
      await cache.drop(touched);
    }
    return outcomes;
  }

  private async perUser(
    input: ReadonlyArray<{ To_Account: string }>,
    outcomes: Promise<WriteOutcome[]>,
  ): Promise<UserWrite[]> {
    return usersOf(
      input.map((u) => u.To_Account),
      await outcomes,
    );
  }
}

/** The users named, in input order and each once, with what the write did for each (see the top of this file). */
export function usersOf(accounts: readonly string[], outcomes: readonly WriteOutcome[]): UserWrite[] {
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
    const failure = failures.get(id);
    return failure ? { id, failure, failedIds: failedWith.get(failure)! } : { id };
  });
}
