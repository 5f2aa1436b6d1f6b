/**
 * The command table: every TIM command this project calls, with the body it
 * sends and the answer it reads (shared/TIM-API.md). The client takes a
 * command and its body, typed by this table, and reads the accounts a call
 * names from the body itself; nothing above it guesses a body's shape.
 */
import type {
  AttrNames,
  Attrs,
  CommonAnswer,
  GetAttrAnswer,
  GetAttrNameAnswer,
  GetTagAnswer,
  UserAttrNames,
  UserAttrs,
  UserTags,
} from './wire.js';

/** `{"To_Account": [...]}`: the get commands and im_remove_all_tags. */
export interface AccountsRequest {
  To_Account: string[];
}

/** One element of an im_push `MsgBody`. */
export type PushElement =
  | { MsgType: 'TIMTextElem'; MsgContent: { Text: string } }
  | { MsgType: 'TIMCustomElem'; MsgContent: { Data: string; Desc?: string; Ext?: string } };

/** Who an im_push reaches; none: every user. */
export interface PushCondition {
  TagsAnd?: string[];
  TagsOr?: string[];
  AttrsAnd?: Attrs;
  AttrsOr?: Attrs;
}

export interface PushRequest {
  /** The same value within 7 days is the same task. */
  MsgRandom: number;
  MsgBody: PushElement[];
  Condition?: PushCondition;
  MsgLifeTime?: number;
  From_Account?: string;
  OfflinePushInfo?: { PushFlag?: number; Title?: string; Desc?: string; Ext?: string };
}

export interface PushAnswer extends CommonAnswer {
  TaskId?: string;
}

/** Each command's request and answer. */
export interface Commands {
  im_get_tag: { request: AccountsRequest; answer: GetTagAnswer };
  im_add_tag: { request: { UserTags: UserTags[] }; answer: CommonAnswer };
  im_remove_tag: { request: { UserTags: UserTags[] }; answer: CommonAnswer };
  im_remove_all_tags: { request: AccountsRequest; answer: CommonAnswer };
  im_get_attr_name: { request: Record<string, never>; answer: GetAttrNameAnswer };
  im_set_attr_name: { request: { AttrNames: AttrNames }; answer: CommonAnswer };
  im_get_attr: { request: AccountsRequest; answer: GetAttrAnswer };
  im_set_attr: { request: { UserAttrs: UserAttrs[] }; answer: CommonAnswer };
  im_remove_attr: { request: { UserAttrs: UserAttrNames[] }; answer: CommonAnswer };
  im_push: { request: PushRequest; answer: PushAnswer };
}

export type Command = keyof Commands;
export type RequestOf<C extends Command> = Commands[C]['request'];
export type AnswerOf<C extends Command> = Commands[C]['answer'];

/** The read commands that look accounts up, and are batched by the lookup queue. */
export type LookupCommand = 'im_get_tag' | 'im_get_attr';

export const COMMANDS: readonly Command[] = [
  'im_get_tag',
  'im_add_tag',
  'im_remove_tag',
  'im_remove_all_tags',
  'im_get_attr_name',
  'im_set_attr_name',
  'im_get_attr',
  'im_set_attr',
  'im_remove_attr',
  'im_push',
];

const toAccounts = (body: AccountsRequest) => body.To_Account;
const entryAccounts = (entries: ReadonlyArray<{ To_Account: string }>) => entries.map((e) => e.To_Account);
const none = () => [];

/** How to read the accounts each command's body names. */
const ACCOUNTS_OF: { [C in Command]: (body: RequestOf<C>) => string[] } = {
  im_get_tag: toAccounts,
  im_add_tag: (body) => entryAccounts(body.UserTags),
  im_remove_tag: (body) => entryAccounts(body.UserTags),
  im_remove_all_tags: toAccounts,
  im_get_attr_name: none,
  im_set_attr_name: none,
  im_get_attr: toAccounts,
  im_set_attr: (body) => entryAccounts(body.UserAttrs),
  im_remove_attr: (body) => entryAccounts(body.UserAttrs),
  im_push: none,
};

/** The accounts a call of `command` names (for metrics, traces and cache drops). */
export function accountsIn<C extends Command>(command: C, body: RequestOf<C>): string[] {
  return (ACCOUNTS_OF[command] as (body: RequestOf<C>) => string[])(body);
}
