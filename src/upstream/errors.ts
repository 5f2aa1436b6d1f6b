/** Failures the upstream layer itself decides, before or instead of an upstream call. */

/** The rate budget cannot serve this lookup before its deadline. */
export class RateLimitedError extends Error {
  override readonly name: string = 'RateLimitedError';
  constructor(message = 'the upstream rate budget cannot serve this lookup in time') {
    super(message);
  }
}

/** No push may leave before the request's deadline: pushes leave one per second (src/upstream/push-pacer.ts). */
export class PushPacingError extends RateLimitedError {
  constructor() {
    super('no push may leave before the request deadline (pushes leave one per second)');
  }
}

/** A rename would give one attribute name to two slots. */
export class AttributeNameConflict extends Error {
  override readonly name = 'AttributeNameConflict';
  constructor(
    readonly attribute: string,
    readonly slot: number,
    readonly otherSlot: number,
  ) {
    super(`Attribute name ${JSON.stringify(attribute)} would name both slot ${slot} and slot ${otherSlot}`);
  }
}
