/**
 * The app's attribute names, for checking a push audience before the push.
 * TODO(merge): the attr helper's cached attribute-name reader implements AttributeNameSource; this one asks TIM
 * (im_get_attr_name) every time.
 */
import type { TimClient } from '../tim/client.js';
import type { CommonAnswer } from '../tim/wire.js';

export interface AttributeNameSource {
  /** The names the app has given its attribute slots; rejects with the upstream's error when it cannot tell. */
  names(deadline: number): Promise<Set<string>>;
}

interface GetAttrNameAnswer extends CommonAnswer {
  AttrNames?: Record<string, string>;
}

export class UpstreamAttributeNames implements AttributeNameSource {
  constructor(private readonly client: TimClient) {}

  async names(deadline: number): Promise<Set<string>> {
    const answer = await this.client.call<GetAttrNameAnswer>('im_get_attr_name', {}, 0, deadline - Date.now());
    return new Set(Object.values(answer.AttrNames ?? {}));
  }
}
