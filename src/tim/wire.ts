/** The JSON shapes of TIM's REST API that the client and the emulator share (see shared/TIM-API.md). */

export const TIM_SERVICE = 'all_member_push';

export type TagCommand = 'im_get_tag' | 'im_add_tag' | 'im_remove_tag' | 'im_remove_all_tags';
export type AttrCommand = 'im_get_attr_name' | 'im_set_attr_name' | 'im_get_attr' | 'im_set_attr' | 'im_remove_attr';

/** Accounts one call may name, for all four commands. */
export const MAX_ACCOUNTS_PER_CALL = 100;
/** Tags for one account in one add/remove call. */
export const MAX_TAGS_PER_ACCOUNT_PER_CALL = 10;
/** Tags one account may hold. */
export const MAX_TAGS_PER_ACCOUNT = 100;
/** Distinct tags in the whole app. */
export const MAX_TAGS_PER_APP = 1000;
export const MAX_TAG_BYTES = 50;
/** An attribute name or value. */
export const MAX_ATTR_BYTES = 50;
/** Attribute slots an app may name: "0" to "9". */
export const MAX_ATTR_SLOTS = 10;
export const MAX_ACCOUNT_BYTES = 32;
/** Upstream calls per second, per command, per app. */
export const UPSTREAM_CALLS_PER_SECOND = 100;

export interface CommonAnswer {
  ActionStatus: 'OK' | 'FAIL';
  ErrorCode: number;
  ErrorInfo: string;
  RequestId?: string;
  /** The Push service's per-account failures; read whenever present. */
  ErrorList?: AccountError[];
}

export interface AccountError {
  To_Account: string;
  ErrorCode: number;
  ErrorInfo?: string;
}

export interface UserTags {
  To_Account: string;
  Tags: string[];
}

export interface GetTagRequest {
  To_Account: string[];
}

export interface GetTagAnswer extends CommonAnswer {
  UserTags?: UserTags[];
}

export interface WriteTagsRequest {
  UserTags: UserTags[];
}

export interface RemoveAllTagsRequest {
  To_Account: string[];
}

/** Slot ("0" to "9") -> attribute name. */
export type AttrNames = Record<string, string>;

/** Attribute name -> value. */
export type Attrs = Record<string, string>;

export interface UserAttrs {
  To_Account: string;
  Attrs: Attrs;
}

/** im_remove_attr names the attributes only. */
export interface UserAttrNames {
  To_Account: string;
  Attrs: string[];
}

export interface GetAttrNameAnswer extends CommonAnswer {
  AttrNames?: AttrNames;
}

export interface GetAttrAnswer extends CommonAnswer {
  UserAttrs?: UserAttrs[];
}

/** Public error codes this project handles by name. */
export const TimCode = {
  JSON_PARSE_FAILED: 90001,
  NEEDS_ADMIN: 90009,
  TOO_MANY_ACCOUNTS: 90018,
  INTERNAL_RETRY: 91000,
  TAG_TOO_LONG: 90020,
  TOO_MANY_TAGS_IN_ADD: 90032,
  EMPTY_TAG: 90040,
  INVALID_ATTRIBUTE: 90033,
  HTTP_UNREADABLE: 60002,
  SDKAPPID_INVALID: 60006,
  RATE_LIMITED: 60007,
  UNKNOWN_COMMAND: 60009,
  APP_RATE_LIMITED: 60011,
  SDKAPPID_MISSING: 60012,
  USERSIG_EXPIRED: 70001,
  USERSIG_EMPTY: 70002,
  USERSIG_UNREADABLE: 70003,
  USERSIG_CHECK_FAILED: 70005,
  USERSIG_OTHER_KEY: 70009,
  IDENTIFIER_MISMATCH: 70013,
  SDKAPPID_MISMATCH: 70014,
  USERSIG_LOCKED_OUT: 70050,
  ACCOUNT_NOT_FOUND: 70107,
  INTERNAL_TIMEOUT: 70169,
  INVALID_PARAMETERS: 70402,
  INTERNAL_ERROR: 70500,
} as const;

/** Byte length as the upstream counts it (UTF-8). */
export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** A UserID the upstream accepts: 1 to 32 bytes of printable ASCII. */
export function accountProblem(id: string): string | null {
  if (id.length === 0) return 'is empty';
  if (!/^[\x20-\x7e]+$/.test(id)) return 'has characters outside printable ASCII';
  if (id.length > MAX_ACCOUNT_BYTES) return `is ${id.length} bytes, over the ${MAX_ACCOUNT_BYTES}-byte limit`;
  return null;
}

/** A tag the upstream accepts: 1 to 50 bytes of UTF-8. */
export function tagProblem(tag: string): string | null {
  if (tag.length === 0) return 'is empty';
  const bytes = utf8Bytes(tag);
  if (bytes > MAX_TAG_BYTES) return `is ${bytes} bytes, over the ${MAX_TAG_BYTES}-byte limit`;
  return null;
}

/** An attribute name or value the upstream accepts: 1 to 50 bytes of UTF-8. */
export function attrProblem(text: string): string | null {
  if (text.length === 0) return 'is empty';
  const bytes = utf8Bytes(text);
  if (bytes > MAX_ATTR_BYTES) return `is ${bytes} bytes, over the ${MAX_ATTR_BYTES}-byte limit`;
  return null;
}
