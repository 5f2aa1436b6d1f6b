/**
 * The attribute commands' answers and write plans (TIM-API.md, "Attributes"):
 * facts about TIM, not about GraphQL, beside their tag counterparts in tags.ts.
 */
import { TimError } from './errors.js';
import { chunk, readErrorList } from './tags.js';
import {
  MAX_ACCOUNTS_PER_CALL,
  MAX_ATTR_SLOTS,
  type AttrNames,
  type Attrs,
  type GetAttrAnswer,
  type GetAttrNameAnswer,
  type UserAttrNames,
  type UserAttrs,
} from './wire.js';

/**
 * Reads an `im_get_attr` answer by `To_Account`, in any order. An account
 * left out, or answered with `Attrs: {}`, has none; values that are not
 * strings are skipped; `ErrorList` entries are that account's own error.
 */
export function readGetAttrAnswer(accounts: readonly string[], answer: GetAttrAnswer): Map<string, Attrs | TimError> {
  const out = new Map<string, Attrs | TimError>();
  for (const account of accounts) out.set(account, {});
  if (answer.UserAttrs !== undefined && !Array.isArray(answer.UserAttrs)) {
    throw TimError.unavailable('im_get_attr answered UserAttrs that is not a list');
  }
  for (const entry of answer.UserAttrs ?? []) {
    if (!entry || typeof entry.To_Account !== 'string' || !out.has(entry.To_Account)) continue;
    out.set(entry.To_Account, stringsOf(entry.Attrs));
  }
  for (const [account, error] of readErrorList(answer)) if (out.has(account)) out.set(account, error);
  return out;
}

/** Reads an `im_get_attr_name` answer: slot -> name, slots 0 to 9 with a non-empty name only. */
export function readAttrNames(answer: GetAttrNameAnswer): Map<number, string> {
  const out = new Map<number, string>();
  for (const [slot, name] of Object.entries(stringsOf(answer.AttrNames))) {
    const n = Number(slot);
    if (Number.isInteger(n) && n >= 0 && n < MAX_ATTR_SLOTS && name !== '') out.set(n, name);
  }
  return new Map([...out].sort(([a], [b]) => a - b));
}

/** The whole map `im_set_attr_name` takes (it replaces the app's names). */
export function attrNamesBody(slots: ReadonlyMap<number, string>): AttrNames {
  return Object.fromEntries([...slots].map(([slot, name]) => [String(slot), name]));
}

/** Splits an `im_set_attr` into calls of at most 100 accounts; an account named twice is merged, the later value winning. */
export function planAttrWrites(input: readonly UserAttrs[]): UserAttrs[][] {
  const merged = new Map<string, Attrs>();
  for (const { To_Account, Attrs } of input) merged.set(To_Account, { ...merged.get(To_Account), ...Attrs });
  return chunk(
    [...merged].map(([To_Account, Attrs]) => ({ To_Account, Attrs })),
    MAX_ACCOUNTS_PER_CALL,
  );
}

/** Splits an `im_remove_attr` into calls of at most 100 accounts; names are sent once per account. */
export function planAttrRemovals(input: readonly UserAttrNames[]): UserAttrNames[][] {
  const merged = new Map<string, Set<string>>();
  for (const { To_Account, Attrs } of input) {
    const names = merged.get(To_Account) ?? new Set<string>();
    for (const name of Attrs) names.add(name);
    merged.set(To_Account, names);
  }
  return chunk(
    [...merged].map(([To_Account, names]) => ({ To_Account, Attrs: [...names] })),
    MAX_ACCOUNTS_PER_CALL,
  );
}

/** The string-valued fields of an object; anything else is none. */
function stringsOf(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}
