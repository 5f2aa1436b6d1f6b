/**
 * im_push as TIM-API.md describes it: every rule and code, the 1 s spacing,
 * a daily quota, 7-day MsgRandom deduplication, and the audience evaluated
 * against the store when the push arrives. Each task is recorded with its
 * recipients, for tests and for a person trying it (GET /__emulator/pushes).
 */
import {
  MAX_LIFETIME_SECONDS,
  MAX_MSG_BODY_BYTES,
  MAX_PUSH_TAGS,
  PUSH_DEDUP_MS,
  PUSH_SPACING_MS,
  PushCode,
} from '../tim/push.js';
import type { PushCondition } from '../tim/commands.js';
import { MAX_ATTR_BYTES, MAX_TAG_BYTES, utf8Bytes } from '../tim/wire.js';
import type { Refusal } from './types.js';

/** What a push needs of the emulator's store: the app's attribute names, and who a condition reaches. */
export interface PushAudience {
  isNamed(attribute: string): boolean;
  /** The accounts `condition` reaches now (src/emulator/audience.ts); none: every account. */
  accountsMatching(condition: PushCondition): string[];
}

export interface PushTaskRecord {
  taskId: string;
  msgRandom: number;
  /** Arrival, epoch ms. */
  at: number;
  body: unknown;
  /** Who the push reached, evaluated on arrival, sorted. */
  recipients: string[];
}

/** TIM's default pushes per app per day. */
export const DEFAULT_DAILY_QUOTA = 100;
const DAY_MS = 24 * 3600 * 1000;

export class PushService {
  readonly tasks: PushTaskRecord[] = [];
  dailyQuota = DEFAULT_DAILY_QUOTA;
  enabled = true;
  private lastAcceptedAt = -Infinity;
  private readonly byRandom = new Map<number, PushTaskRecord>();
  private readonly listeners: Array<(task: PushTaskRecord) => void> = [];
  private taskCount = 0;

  onTask(listener: (task: PushTaskRecord) => void): void {
    this.listeners.push(listener);
  }

  /** Clears tasks, deduplication and the day's count (the control surface's reset). */
  reset(): void {
    this.tasks.length = 0;
    this.byRandom.clear();
    this.lastAcceptedAt = -Infinity;
  }

  run(body: unknown, at: number, audience: PushAudience): Refusal | { TaskId: string } {
    if (!this.enabled) return { code: PushCode.NOT_ENABLED, info: 'push is not enabled for this app' };
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const random = b.MsgRandom;
    if (!Number.isInteger(random) || (random as number) < 0 || (random as number) >= 2 ** 32)
      return { code: PushCode.MISSING_MSG_RANDOM, info: 'MsgRandom is missing or not a 32-bit unsigned integer' };
    const bodyProblem = msgBodyProblem(b.MsgBody);
    if (bodyProblem) return { code: PushCode.MALFORMED_BODY, info: bodyProblem };
    const life = b.MsgLifeTime;
    if (
      life !== undefined &&
      !(Number.isInteger(life) && (life as number) >= 0 && (life as number) <= MAX_LIFETIME_SECONDS)
    )
      return { code: PushCode.LIFETIME_OUT_OF_RANGE, info: `MsgLifeTime must be 0 to ${MAX_LIFETIME_SECONDS}` };
    const condition = (b.Condition ?? {}) as PushCondition;
    const conditionRefusal = conditionProblem(condition, audience);
    if (conditionRefusal) return conditionRefusal;

    const seen = this.byRandom.get(random as number);
    if (seen && at - seen.at < PUSH_DEDUP_MS) return { TaskId: seen.taskId };
    if (at - this.lastAcceptedAt <= PUSH_SPACING_MS)
      return { code: PushCode.TOO_FREQUENT, info: 'pushes must be more than 1 second apart' };
    const today = this.tasks.filter((t) => at - t.at < DAY_MS).length;
    if (today >= this.dailyQuota)
      return { code: PushCode.DAILY_QUOTA, info: `the day's ${this.dailyQuota} pushes are used up` };

    this.lastAcceptedAt = at;
    const task: PushTaskRecord = {
      taskId: `emu-push-${(++this.taskCount).toString(36)}-${Math.floor(at).toString(36)}`,
      msgRandom: random as number,
      at,
      body,
      recipients: audience.accountsMatching(condition).sort(),
    };
    this.tasks.push(task);
    this.byRandom.set(task.msgRandom, task);
    for (const listener of this.listeners) listener(task);
    return { TaskId: task.taskId };
  }
}

function conditionProblem(c: PushCondition, audience: PushAudience): Refusal | null {
  const tagsAnd = c.TagsAnd ?? [];
  const tagsOr = c.TagsOr ?? [];
  const hasTags = c.TagsAnd !== undefined || c.TagsOr !== undefined;
  const hasAttrs = c.AttrsAnd !== undefined || c.AttrsOr !== undefined;
  if (hasTags && hasAttrs) return { code: PushCode.TAGS_AND_ATTRIBUTES, info: 'tags and attributes together' };
  if (!Array.isArray(tagsAnd) || !Array.isArray(tagsOr))
    return { code: PushCode.MALFORMED_BODY, info: 'tags must be arrays' };
  if (tagsAnd.length + tagsOr.length > MAX_PUSH_TAGS)
    return { code: PushCode.TOO_MANY_TAGS, info: `more than ${MAX_PUSH_TAGS} tags in the condition` };
  for (const tag of [...tagsAnd, ...tagsOr]) {
    if (typeof tag !== 'string' || tag.length === 0) return { code: PushCode.EMPTY_TAG, info: 'an empty tag' };
    if (utf8Bytes(tag) > MAX_TAG_BYTES)
      return { code: PushCode.TAG_TOO_LONG, info: `tag ${JSON.stringify(tag)} is over 50 bytes` };
  }
  const both = tagsAnd.find((t) => tagsOr.includes(t));
  if (both !== undefined)
    return { code: PushCode.TAG_IN_BOTH, info: `tag ${JSON.stringify(both)} in TagsAnd and TagsOr` };
  for (const attrs of [c.AttrsAnd, c.AttrsOr]) {
    for (const [name, value] of Object.entries(attrs ?? {})) {
      if (!audience.isNamed(name))
        return { code: PushCode.UNNAMED_ATTRIBUTE, info: `attribute ${JSON.stringify(name)} is not named` };
      if (typeof value !== 'string' || utf8Bytes(value) > MAX_ATTR_BYTES)
        return { code: PushCode.MALFORMED_BODY, info: `attribute ${JSON.stringify(name)} has a bad value` };
    }
  }
  return null;
}

function msgBodyProblem(body: unknown): string | null {
  if (!Array.isArray(body) || body.length === 0) return 'MsgBody must be a non-empty array of elements';
  for (const e of body as Array<Record<string, unknown>>) {
    const content = (e?.MsgContent ?? null) as Record<string, unknown> | null;
    if (e?.MsgType === 'TIMTextElem') {
      if (typeof content?.Text !== 'string' || content.Text === '') return 'TIMTextElem needs a non-empty Text';
    } else if (e?.MsgType === 'TIMCustomElem') {
      if (typeof content?.Data !== 'string') return 'TIMCustomElem needs Data';
    } else return `unknown MsgType ${JSON.stringify(e?.MsgType)}`;
  }
  const bytes = utf8Bytes(JSON.stringify(body));
  if (bytes > MAX_MSG_BODY_BYTES) return `MsgBody is ${bytes} bytes of JSON, over ${MAX_MSG_BODY_BYTES}`;
  return null;
}
