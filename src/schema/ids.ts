/**
 * The user ids one request asks for. Every resolver admits its ids here before
 * it touches a loader: an id the upstream would refuse, or one id too many
 * (MAX_IDS_PER_REQUEST), refuses the request's lookups as a whole. Resolvers of
 * one request all run before the loader's batch function does, so a refused
 * request makes no upstream call at all, not even for its good ids.
 */
import type { GraphQLError } from 'graphql';
import { accountProblem } from '../tim/wire.js';
import { badInput, excerpt, quote } from './errors.js';

export class RequestIds {
  private readonly seen = new Set<string>();
  private refused: GraphQLError | null = null;

  constructor(private readonly max: number) {}

  /**
   * Checks and counts ids (`argument` names where they came from); throws
   * BAD_USER_INPUT when one is bad. A read refuses the whole request's lookups
   * with it; a mutation (`refuseRequest: false`) fails alone, since mutation
   * fields run one after another and one before it may have written already.
   */
  admit(ids: ReadonlyArray<string | number>, argument: string, { refuseRequest = true } = {}): string[] {
    const refuse = (error: GraphQLError) => {
      if (refuseRequest) this.refused ??= error;
      return error;
    };
    const accounts = ids.map((id) => {
      const problem = accountProblem(String(id));
      if (!problem) return String(id);
      throw refuse(
        badInput(`User id ${quote(id)} ${problem} (a TIM UserID is 1 to 32 bytes of printable ASCII)`, {
          argument,
          id: excerpt(id),
        }),
      );
    });
    for (const account of accounts) this.seen.add(account);
    if (this.seen.size > this.max) {
      throw refuse(
        badInput(`This request asks for more than ${this.max} distinct user ids (MAX_IDS_PER_REQUEST)`, {
          limit: this.max,
        }),
      );
    }
    return accounts;
  }

  /** Why the request's lookups are refused, once they are. */
  get refusal(): GraphQLError | null {
    return this.refused;
  }
}
