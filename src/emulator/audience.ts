/**
 * Who an im_push condition reaches, over the emulator's tags and attributes
 * (TIM-API.md, "Push"): none, every account; `TagsOr` and `TagsAnd` together
 * mean (any of TagsOr) and (all of TagsAnd), and likewise for attributes.
 */
import type { PushCondition } from '../tim/commands.js';
import type { AttributeStore } from './attributes.js';
import type { TagStore } from './store.js';

export function accountsMatching(tags: TagStore, attributes: AttributeStore, condition: PushCondition = {}): string[] {
  const everyone = new Set([...tags.accounts(), ...attributes.accounts()]);
  return [...everyone].filter((account) => {
    const held = new Set(tags.getTags(account));
    const attrs = attributes.get(account);
    const hasAttr = ([name, value]: [string, string]) => attrs[name] === value;
    if (condition.TagsAnd && !condition.TagsAnd.every((t) => held.has(t))) return false;
    if (condition.TagsOr && !condition.TagsOr.some((t) => held.has(t))) return false;
    if (condition.AttrsAnd && !Object.entries(condition.AttrsAnd).every(hasAttr)) return false;
    if (condition.AttrsOr && !Object.entries(condition.AttrsOr).some(hasAttr)) return false;
    return true;
  });
}
