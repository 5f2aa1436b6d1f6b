/**
 * The five attribute commands and the data they keep (TIM-API.md, "Attributes"):
 * the app's names (slot -> name; im_set_attr_name replaces the whole map) and
 * each account's values by name (im_set_attr merges). A user's value for a
 * name the app no longer has is kept but not shown. Every write checks the
 * whole call before touching anything, so a refused call changes nothing.
 */
import {
  MAX_ACCOUNTS_PER_CALL,
  MAX_ATTR_SLOTS,
  TimCode,
  attrProblem,
  type AccountError,
  type AttrCommand,
  type AttrNames,
  type Attrs,
  type UserAttrs,
} from '../tim/wire.js';
import { accountRefusal, invalid, readAccounts, tooManyAccounts } from './commands.js';
import type { Refusal } from './types.js';

export const ATTR_COMMANDS: ReadonlySet<string> = new Set<AttrCommand>([
  'im_get_attr_name',
  'im_set_attr_name',
  'im_get_attr',
  'im_set_attr',
  'im_remove_attr',
]);

export function isAttrCommand(command: string): command is AttrCommand {
  return ATTR_COMMANDS.has(command);
}

/** What the emulator starts with: the app's names and users' values. */
export interface AttributeSeed {
  AttrNames: AttrNames;
  UserAttrs: UserAttrs[];
}

export class AttributeStore {
  private names = new Map<number, string>();
  private readonly values = new Map<string, Map<string, string>>();

  constructor(seed: AttributeSeed = { AttrNames: {}, UserAttrs: [] }) {
    for (const [slot, name] of Object.entries(seed.AttrNames)) this.names.set(Number(slot), name);
    for (const { To_Account, Attrs } of seed.UserAttrs) this.merge(To_Account, Attrs);
  }

  /** Slot -> name, slot order. */
  attrNames(): AttrNames {
    return Object.fromEntries([...this.names].sort(([a], [b]) => a - b).map(([slot, name]) => [String(slot), name]));
  }

  isNamed(name: string): boolean {
    return [...this.names.values()].includes(name);
  }

  /** Replaces every name (what im_set_attr_name does). */
  setNames(names: ReadonlyMap<number, string>): void {
    this.names = new Map(names);
  }

  /** The account's values of the attributes the app names now. */
  get(account: string): Attrs {
    const held = this.values.get(account);
    if (!held) return {};
    return Object.fromEntries([...held].filter(([name]) => this.isNamed(name)));
  }

  has(account: string): boolean {
    return this.values.has(account);
  }

  accounts(): string[] {
    return [...this.values.keys()];
  }

  merge(account: string, attrs: Attrs): void {
    let held = this.values.get(account);
    if (!held) this.values.set(account, (held = new Map()));
    for (const [name, value] of Object.entries(attrs)) held.set(name, value);
  }

  remove(account: string, names: readonly string[]): void {
    const held = this.values.get(account);
    if (held) for (const name of names) held.delete(name);
  }
}

/** A served call: the fields it adds to the common answer. */
export interface AttrServed {
  AttrNames?: AttrNames;
  UserAttrs?: UserAttrs[];
  ErrorList?: AccountError[];
}

export interface AttrSettings {
  attributes: AttributeStore;
  /** Whether an account exists (strictAccounts); every account does otherwise. */
  exists(account: string): boolean;
}

export function runAttrCommand(command: AttrCommand, body: unknown, settings: AttrSettings): Refusal | AttrServed {
  const store = settings.attributes;
  if (!isObject(body)) return invalid('the body must be a JSON object');
  switch (command) {
    case 'im_get_attr_name':
      return { AttrNames: store.attrNames() };
    case 'im_set_attr_name': {
      const names = readAttrNames(body.AttrNames);
      if (!(names instanceof Map)) return names;
      store.setNames(names);
      return {};
    }
    case 'im_get_attr': {
      const accounts = readAccounts(body);
      if (!Array.isArray(accounts)) return accounts;
      const userAttrs: UserAttrs[] = [];
      const errorList: AccountError[] = [];
      for (const account of new Set(accounts)) {
        if (!settings.exists(account)) {
          errorList.push({
            To_Account: account,
            ErrorCode: TimCode.ACCOUNT_NOT_FOUND,
            ErrorInfo: 'account does not exist',
          });
        } else {
          userAttrs.push({ To_Account: account, Attrs: store.get(account) });
        }
      }
      return errorList.length > 0 ? { UserAttrs: userAttrs, ErrorList: errorList } : { UserAttrs: userAttrs };
    }
    case 'im_set_attr': {
      const entries = readUserAttrs(body.UserAttrs, store, 'values');
      if (!Array.isArray(entries)) return entries;
      for (const { To_Account, Attrs } of entries) store.merge(To_Account, Attrs as Attrs);
      return {};
    }
    case 'im_remove_attr': {
      const entries = readUserAttrs(body.UserAttrs, store, 'names');
      if (!Array.isArray(entries)) return entries;
      for (const { To_Account, Attrs } of entries) store.remove(To_Account, Attrs as string[]);
      return {};
    }
  }
}

/** `{"0": "sex", ...}`: slots 0 to 9, names 1 to 50 bytes, no name twice. */
function readAttrNames(value: unknown): Map<number, string> | Refusal {
  if (!isObject(value)) return invalid('AttrNames must be an object of slot to name');
  const names = new Map<number, string>();
  for (const [slot, name] of Object.entries(value)) {
    const n = Number(slot);
    if (!/^\d$/.test(slot) || n >= MAX_ATTR_SLOTS)
      return invalid(`attribute slot ${JSON.stringify(slot)} is not 0 to 9`);
    if (typeof name !== 'string') return invalid(`the name of slot ${slot} must be a string`);
    const problem = attrProblem(name);
    if (problem) return invalid(`attribute name ${JSON.stringify(name)} ${problem}`);
    if ([...names.values()].includes(name)) return invalid(`attribute name ${JSON.stringify(name)} names two slots`);
    names.set(n, name);
  }
  return names;
}

/** `UserAttrs` of im_set_attr (name -> value objects) or im_remove_attr (name lists). */
function readUserAttrs(
  value: unknown,
  store: AttributeStore,
  shape: 'values' | 'names',
): Array<{ To_Account: string; Attrs: Attrs | string[] }> | Refusal {
  if (!Array.isArray(value)) return invalid('UserAttrs must be an array of {To_Account, Attrs}');
  if (value.length > MAX_ACCOUNTS_PER_CALL) return tooManyAccounts(value.length);
  for (const entry of value as unknown[]) {
    const account = isObject(entry) ? entry.To_Account : undefined;
    const badAccount = accountRefusal(account);
    if (badAccount) return badAccount;
    const attrs = (entry as { Attrs?: unknown }).Attrs;
    const named = shape === 'values' ? (isObject(attrs) ? Object.entries(attrs) : null) : arrayOfNames(attrs);
    if (!named) {
      return invalid(
        `Attrs of ${JSON.stringify(account)} must be ${shape === 'values' ? 'an object of name to value' : 'an array of names'}`,
      );
    }
    for (const [name, v] of named) {
      if (!store.isNamed(name)) {
        return {
          code: TimCode.INVALID_ATTRIBUTE,
          info: `invalid attribute ${JSON.stringify(name)}: the app has not named it`,
        };
      }
      if (shape === 'values') {
        if (typeof v !== 'string') return invalid(`the value of ${JSON.stringify(name)} must be a string`);
        const problem = attrProblem(v);
        if (problem) return invalid(`the value of ${JSON.stringify(name)} for ${JSON.stringify(account)} ${problem}`);
      }
    }
  }
  return value as Array<{ To_Account: string; Attrs: Attrs | string[] }>;
}

function arrayOfNames(value: unknown): Array<[string, unknown]> | null {
  if (!Array.isArray(value) || !value.every((n) => typeof n === 'string')) return null;
  return value.map((n: string) => [n, undefined]);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
