/**
 * The four tag commands, typed: what each sends and how each answer is read.
 * Splitting work into calls that fit the upstream's limits lives here too,
 * because those limits are facts about TIM, not about GraphQL.
 */
import { TimError } from './errors.js';
import {
  MAX_ACCOUNTS_PER_CALL,
  MAX_TAGS_PER_ACCOUNT_PER_CALL,
  type AccountError,
  type CommonAnswer,
  type GetTagAnswer,
  type UserTags,
} from './wire.js';

/** One account's outcome of a get: its tags, or its own error from `ErrorList`. */
export type AccountTags = { tags: string[] } | { error: TimError };

/**
 * Reads an `im_get_tag` answer by `To_Account`, never by position. An account
 * that is left out, or answered with `Tags: []`, has no tags.
 */
export function readGetTagAnswer(accounts: readonly string[], answer: GetTagAnswer): Map<string, AccountTags> {
  const out = new Map<string, AccountTags>();
  for (const account of accounts) out.set(account, { tags: [] });
  if (answer.UserTags !== undefined && !Array.isArray(answer.UserTags)) {
    throw TimError.unavailable('im_get_tag answered UserTags that is not a list');
  }
  for (const entry of answer.UserTags ?? []) {
    if (!entry || typeof entry.To_Account !== 'string' || !out.has(entry.To_Account)) continue;
    const tags = Array.isArray(entry.Tags) ? entry.Tags.filter((t): t is string => typeof t === 'string') : [];
    out.set(entry.To_Account, { tags });
  }
  for (const [account, error] of readErrorList(answer)) if (out.has(account)) out.set(account, { error });
  return out;
}

/**
 * The accounts an answer's `ErrorList` refused one by one, each with its own
 * TimError; entries that name no account are skipped. A list that is not a
 * list is an unreadable answer: which accounts failed cannot be told.
 */
export function readErrorList(answer: CommonAnswer): Map<string, TimError> {
  const out = new Map<string, TimError>();
  if (answer.ErrorList == null) return out;
  if (!Array.isArray(answer.ErrorList)) throw TimError.unavailable('TIM answered an ErrorList that is not a list');
  for (const failed of answer.ErrorList as unknown[]) {
    if (typeof failed !== 'object' || failed === null) continue;
    const { To_Account, ErrorCode, ErrorInfo } = failed as Partial<AccountError>;
    if (typeof To_Account !== 'string') continue;
    out.set(To_Account, TimError.fail(ErrorCode as number, typeof ErrorInfo === 'string' ? ErrorInfo : ''));
  }
  return out;
}

/** Cuts a list into pieces of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Splits an add/remove into calls of at most 100 accounts and 10 tags per
 * account: round r carries every account's tags [10r, 10r + 10). Duplicate tags
 * are sent once; an account named twice has its tags merged.
 */
export function planTagWrites(input: readonly UserTags[]): UserTags[][] {
  const merged = new Map<string, Set<string>>();
  for (const { To_Account, Tags } of input) {
    const tags = merged.get(To_Account) ?? new Set<string>();
    for (const tag of Tags) tags.add(tag);
    merged.set(To_Account, tags);
  }
  const rounds: UserTags[][] = [];
  for (const [account, tagSet] of merged) {
    chunk([...tagSet], MAX_TAGS_PER_ACCOUNT_PER_CALL).forEach((tags, r) => {
      (rounds[r] ??= []).push({ To_Account: account, Tags: tags });
    });
  }
  return rounds.flatMap((round) => chunk(round, MAX_ACCOUNTS_PER_CALL));
}

/** Splits `im_get_tag` / `im_remove_all_tags` accounts into calls of at most 100. */
export function planAccountCalls(accounts: readonly string[]): string[][] {
  return chunk([...new Set(accounts)], MAX_ACCOUNTS_PER_CALL);
}
