/**
 * The four tag commands: check the body's shape and the per-call limits, then read or write
 * the store. Everything here runs after the gate, the JSON parse and the rate check.
 */
import {
  MAX_ACCOUNTS_PER_CALL,
  MAX_TAG_BYTES,
  MAX_TAGS_PER_ACCOUNT_PER_CALL,
  TimCode,
  accountProblem,
  tagProblem,
  utf8Bytes,
  type AccountError,
  type TagCommand,
  type UserTags,
} from '../tim/wire.js';
import type { TagStore } from './store.js';
import type { Refusal } from './types.js';

export const TAG_COMMANDS: ReadonlySet<string> = new Set<TagCommand>([
  'im_get_tag',
  'im_add_tag',
  'im_remove_tag',
  'im_remove_all_tags',
]);

export function isTagCommand(command: string): command is TagCommand {
  return TAG_COMMANDS.has(command);
}

export interface CommandSettings {
  store: TagStore;
  emptyTags: 'omit' | 'empty';
  strictAccounts: boolean;
}

/** A served call: the fields it adds to the common answer. */
export interface Served {
  UserTags?: UserTags[];
  ErrorList?: AccountError[];
}

export function runTagCommand(command: TagCommand, body: unknown, settings: CommandSettings): Refusal | Served {
  if (command === 'im_add_tag' || command === 'im_remove_tag') {
    const entries = readUserTags(body);
    if (isRefusal(entries)) return entries;
    if (command === 'im_remove_tag') {
      settings.store.remove(entries);
      return {};
    }
    const limit = settings.store.add(entries);
    return limit ? { code: TimCode.INVALID_PARAMETERS, info: limit } : {};
  }
  const accounts = readAccounts(body);
  if (isRefusal(accounts)) return accounts;
  if (command === 'im_remove_all_tags') {
    settings.store.removeAll(accounts);
    return {};
  }
  return getTags(accounts, settings);
}

export function isRefusal(value: object): value is Refusal {
  return 'code' in value;
}

function getTags(accounts: string[], { store, emptyTags, strictAccounts }: CommandSettings): Served {
  const userTags: UserTags[] = [];
  const errorList: AccountError[] = [];
  for (const account of new Set(accounts)) {
    if (strictAccounts && !store.has(account)) {
      errorList.push({
        To_Account: account,
        ErrorCode: TimCode.ACCOUNT_NOT_FOUND,
        ErrorInfo: 'account does not exist',
      });
      continue;
    }
    const tags = store.getTags(account);
    if (tags.length > 0 || emptyTags === 'empty') userTags.push({ To_Account: account, Tags: tags });
  }
  return errorList.length > 0 ? { UserTags: userTags, ErrorList: errorList } : { UserTags: userTags };
}

/** `{"To_Account": [...]}` of im_get_tag, im_remove_all_tags and im_get_attr. */
export function readAccounts(body: unknown): string[] | Refusal {
  const list = fieldOf(body, 'To_Account');
  if (!Array.isArray(list)) return invalid('To_Account must be an array of UserIDs');
  if (list.length > MAX_ACCOUNTS_PER_CALL) return tooManyAccounts(list.length);
  for (const account of list) {
    const problem = accountRefusal(account);
    if (problem) return problem;
  }
  return list as string[];
}

/** `{"UserTags": [{"To_Account", "Tags"}]}` of im_add_tag and im_remove_tag. */
function readUserTags(body: unknown): UserTags[] | Refusal {
  const list = fieldOf(body, 'UserTags');
  if (!Array.isArray(list)) return invalid('UserTags must be an array of {To_Account, Tags}');
  if (list.length > MAX_ACCOUNTS_PER_CALL) return tooManyAccounts(list.length);
  for (const entry of list) {
    const account = fieldOf(entry, 'To_Account');
    const badAccount = accountRefusal(account);
    if (badAccount) return badAccount;
    const tags = fieldOf(entry, 'Tags');
    if (!Array.isArray(tags)) return invalid(`Tags of ${JSON.stringify(account)} must be an array of strings`);
    if (tags.length > MAX_TAGS_PER_ACCOUNT_PER_CALL) {
      return {
        code: TimCode.TOO_MANY_TAGS_IN_ADD,
        info: `${tags.length} tags for ${JSON.stringify(account)} in one call, over the limit of ${MAX_TAGS_PER_ACCOUNT_PER_CALL}`,
      };
    }
    for (const tag of tags) {
      const problem = tagRefusal(tag, account as string);
      if (problem) return problem;
    }
  }
  return list as UserTags[];
}

export function accountRefusal(account: unknown): Refusal | null {
  if (typeof account !== 'string') return invalid(`To_Account must be a string UserID, got ${JSON.stringify(account)}`);
  const problem = accountProblem(account);
  return problem ? invalid(`UserID ${JSON.stringify(account)} ${problem}`) : null;
}

function tagRefusal(tag: unknown, account: string): Refusal | null {
  if (typeof tag !== 'string')
    return invalid(`tags of ${JSON.stringify(account)} must be strings, got ${JSON.stringify(tag)}`);
  if (tag.length === 0) return { code: TimCode.EMPTY_TAG, info: `an empty tag for ${JSON.stringify(account)}` };
  if (utf8Bytes(tag) > MAX_TAG_BYTES) {
    return { code: TimCode.TAG_TOO_LONG, info: `tag ${JSON.stringify(tag)} ${tagProblem(tag)}` };
  }
  return null;
}

function fieldOf(value: unknown, field: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)[field]
    : undefined;
}

export function invalid(info: string): Refusal {
  return { code: TimCode.INVALID_PARAMETERS, info };
}

export function tooManyAccounts(count: number): Refusal {
  return {
    code: TimCode.TOO_MANY_ACCOUNTS,
    info: `${count} accounts in one call, over the limit of ${MAX_ACCOUNTS_PER_CALL}`,
  };
}
