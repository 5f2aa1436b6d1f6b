/**
 * im_push (TIM-API.md "Push: im_push"): the limits the gateway checks before
 * any call, the body built from the input, and MsgRandom. The wire types are
 * in the command table (commands.ts).
 */
import { createHmac, randomInt } from 'node:crypto';
import type { PushCondition, PushElement, PushRequest } from './commands.js';
import { MAX_ATTR_BYTES, MAX_TAG_BYTES, accountProblem, tagProblem, utf8Bytes } from './wire.js';

export const PUSH_COMMAND = 'im_push';
/** Tags in TagsAnd and TagsOr together. */
export const MAX_PUSH_TAGS = 10;
export const MAX_LIFETIME_SECONDS = 604_800;
/** The whole MsgBody as JSON (TIM-API.md: 90010 beyond). */
export const MAX_MSG_BODY_BYTES = 10_000;
export const MAX_IDEMPOTENCY_KEY_BYTES = 64;
/** How long TIM (the im_push page) and the gateway's record treat one MsgRandom as one task. */
export const PUSH_DEDUP_MS = 7 * 24 * 3600 * 1000;
/** Two pushes of one app must arrive more than this apart (90024 otherwise). */
export const PUSH_SPACING_MS = 1000;

export const PushCode = {
  MISSING_MSG_RANDOM: 90005,
  MALFORMED_BODY: 90010,
  TAG_TOO_LONG: 90020,
  TAG_IN_BOTH: 90022,
  TOO_FREQUENT: 90024,
  LIFETIME_OUT_OF_RANGE: 90026,
  TOO_MANY_TAGS: 90032,
  UNNAMED_ATTRIBUTE: 90033,
  TAGS_AND_ATTRIBUTES: 90039,
  EMPTY_TAG: 90040,
  NOT_ENABLED: 90045,
  DAILY_QUOTA: 90047,
} as const;

// --- what the gateway is asked to send --------------------------------------

export interface AttributeInput {
  name: string;
  value: string;
}

export interface PushInput {
  audience?: {
    tagsAll?: readonly string[] | null;
    tagsAny?: readonly string[] | null;
    attributesAll?: readonly AttributeInput[] | null;
    attributesAny?: readonly AttributeInput[] | null;
  } | null;
  elements: ReadonlyArray<{
    text?: string | null;
    custom?: { data: string; description?: string | null; extension?: string | null } | null;
  }>;
  fromAccount?: string | null;
  offlineLifetimeSeconds?: number | null;
  offlinePush?: { title?: string | null; description?: string | null; extension?: string | null } | null;
  idempotencyKey?: string | null;
}

/** A rule of the input broken: `field` names where (e.g. `input.audience.tagsAll`). */
export class PushInputProblem extends Error {
  override readonly name = 'PushInputProblem';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

export type AudienceKind = 'all' | 'tags' | 'attributes';

/**
 * Checks every local rule and builds the body, MsgRandom aside; throws
 * PushInputProblem naming the first field that breaks one. Attribute names
 * are checked against the app's names by the caller (they need a lookup).
 */
export function planPush(input: PushInput): { body: Omit<PushRequest, 'MsgRandom'>; kind: AudienceKind } {
  const body: Omit<PushRequest, 'MsgRandom'> = { MsgBody: msgBody(input.elements) };
  const condition = conditionOf(input.audience);
  if (condition) body.Condition = condition;
  const lifetime = input.offlineLifetimeSeconds;
  if (lifetime !== undefined && lifetime !== null) {
    if (!Number.isInteger(lifetime) || lifetime < 0 || lifetime > MAX_LIFETIME_SECONDS)
      throw new PushInputProblem(
        'input.offlineLifetimeSeconds',
        `offlineLifetimeSeconds is ${lifetime}; it must be 0 to ${MAX_LIFETIME_SECONDS}`,
      );
    body.MsgLifeTime = lifetime;
  }
  if (input.fromAccount !== undefined && input.fromAccount !== null) {
    const problem = accountProblem(input.fromAccount);
    if (problem)
      throw new PushInputProblem(
        'input.fromAccount',
        `fromAccount ${JSON.stringify(input.fromAccount)} ${problem} (a TIM UserID is 1 to 32 bytes of printable ASCII)`,
      );
    body.From_Account = input.fromAccount;
  }
  if (input.offlinePush) {
    const { title, description, extension } = input.offlinePush;
    body.OfflinePushInfo = omitNulls({ Title: title, Desc: description, Ext: extension });
  }
  if (input.idempotencyKey !== undefined && input.idempotencyKey !== null) {
    const bytes = utf8Bytes(input.idempotencyKey);
    if (bytes < 1 || bytes > MAX_IDEMPOTENCY_KEY_BYTES)
      throw new PushInputProblem(
        'input.idempotencyKey',
        `idempotencyKey is ${bytes} bytes; it must be 1 to ${MAX_IDEMPOTENCY_KEY_BYTES}`,
      );
  }
  const kind: AudienceKind = !condition ? 'all' : condition.TagsAnd || condition.TagsOr ? 'tags' : 'attributes';
  return { body, kind };
}

/** The attribute names an audience uses, for the caller's check against the app's names. */
export function attributeNamesOf(condition: PushCondition | undefined): string[] {
  return [...new Set([...Object.keys(condition?.AttrsAnd ?? {}), ...Object.keys(condition?.AttrsOr ?? {})])];
}

function msgBody(elements: PushInput['elements']): PushElement[] {
  if (elements.length === 0) throw new PushInputProblem('input.elements', 'elements must hold at least one element');
  const body = elements.map((e, i): PushElement => {
    const field = `input.elements[${i}]`;
    // The schema's @oneOf already refuses both or neither; a caller below it gets the same rule.
    if ((e.text === undefined || e.text === null) === (e.custom === undefined || e.custom === null))
      throw new PushInputProblem(field, `${field} must give exactly one of text, custom`);
    if (e.text !== undefined && e.text !== null) {
      if (utf8Bytes(e.text) < 1) throw new PushInputProblem(`${field}.text`, `${field}.text is empty`);
      return { MsgType: 'TIMTextElem', MsgContent: { Text: e.text } };
    }
    const c = e.custom!;
    return {
      MsgType: 'TIMCustomElem',
      MsgContent: omitNulls({ Data: c.data, Desc: c.description, Ext: c.extension }) as {
        Data: string;
        Desc?: string;
        Ext?: string;
      },
    };
  });
  const bytes = utf8Bytes(JSON.stringify(body));
  if (bytes > MAX_MSG_BODY_BYTES)
    throw new PushInputProblem(
      'input.elements',
      `the message is ${bytes} bytes of JSON (MsgBody); at most ${MAX_MSG_BODY_BYTES} may be sent`,
    );
  return body;
}

function conditionOf(audience: PushInput['audience']): PushCondition | undefined {
  if (!audience) return undefined;
  const field = (name: string) => `input.audience.${name}`;
  const lists = { tagsAll: audience.tagsAll, tagsAny: audience.tagsAny };
  const attrs = { attributesAll: audience.attributesAll, attributesAny: audience.attributesAny };
  for (const [name, list] of Object.entries({ ...lists, ...attrs })) {
    if (list && list.length === 0) throw new PushInputProblem(field(name), `${field(name)} is an empty list: omit it`);
  }
  const hasTags = Boolean(audience.tagsAll || audience.tagsAny);
  const hasAttrs = Boolean(audience.attributesAll || audience.attributesAny);
  if (hasTags && hasAttrs)
    throw new PushInputProblem('input.audience', 'an audience names tags or attributes, not both');
  if (hasTags) {
    for (const [name, list] of Object.entries(lists))
      for (const tag of list ?? []) {
        const problem = tagProblem(tag);
        if (problem)
          throw new PushInputProblem(
            field(name),
            `tag ${JSON.stringify(tag)} in ${field(name)} ${problem} (a tag is 1 to ${MAX_TAG_BYTES} bytes)`,
          );
      }
    const all = [...new Set(audience.tagsAll ?? [])];
    const any = [...new Set(audience.tagsAny ?? [])];
    if (all.length + any.length > MAX_PUSH_TAGS)
      throw new PushInputProblem(
        'input.audience',
        `the audience names ${all.length + any.length} tags; at most ${MAX_PUSH_TAGS} in tagsAll and tagsAny together`,
      );
    const both = all.find((t) => any.includes(t));
    if (both !== undefined)
      throw new PushInputProblem('input.audience', `tag ${JSON.stringify(both)} is in both tagsAll and tagsAny`);
    return omitNulls({ TagsAnd: all.length ? all : undefined, TagsOr: any.length ? any : undefined });
  }
  if (!hasAttrs) return undefined;
  const attrObject = (name: string, list: readonly AttributeInput[] | null | undefined) => {
    if (!list) return undefined;
    const out: Record<string, string> = {};
    for (const { name: attr, value } of list) {
      for (const [what, text] of [
        ['name', attr],
        ['value', value],
      ] as const) {
        const bytes = utf8Bytes(text);
        if (bytes < 1 || bytes > MAX_ATTR_BYTES)
          throw new PushInputProblem(
            field(name),
            `attribute ${what} ${JSON.stringify(text)} in ${field(name)} is ${bytes} bytes; it must be 1 to ${MAX_ATTR_BYTES}`,
          );
      }
      if (attr in out && out[attr] !== value)
        throw new PushInputProblem(field(name), `attribute ${JSON.stringify(attr)} is given twice in ${field(name)}`);
      out[attr] = value;
    }
    return out;
  };
  return omitNulls({
    AttrsAnd: attrObject('attributesAll', audience.attributesAll),
    AttrsOr: attrObject('attributesAny', audience.attributesAny),
  });
}

/**
 * The push's MsgRandom: with an idempotency key, HMAC-SHA256 of the key keyed
 * by the app, cut to 32 bits, so the same key of the same app is the same task
 * from any gateway; without one, random. Either way the same for every attempt.
 */
export function msgRandomFor(sdkappid: number, idempotencyKey: string | null | undefined): number {
  if (idempotencyKey === undefined || idempotencyKey === null) return randomInt(0, 2 ** 32);
  return createHmac('sha256', `tim-push:${sdkappid}`).update(idempotencyKey, 'utf8').digest().readUInt32BE(0);
}

function omitNulls<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], null | undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as {
    [K in keyof T]?: Exclude<T[K], null | undefined>;
  };
}
