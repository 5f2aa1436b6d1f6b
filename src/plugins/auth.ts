/**
 * Who is calling, and may they ask this. The gateway signs every upstream call
 * as the app admin, so without this plugin anyone who reaches it could read and
 * change every user's tags.
 *
 * In `jwt` mode it works in two steps, both before any resolver runs:
 * - authenticate, when yoga starts parsing the request: the bearer token is
 *   verified (signature with a pinned algorithm, exp, nbf, iss, aud) and becomes
 *   the request's Caller, or the request ends with UNAUTHENTICATED (HTTP 401).
 *   Doing it this early means an anonymous caller learns nothing, not even
 *   whether a document validates.
 * - authorise, when the operation is about to execute: `authorize` reads the
 *   operation (its type, and the ids its root fields name, with variables
 *   applied) and refuses it whole with FORBIDDEN (HTTP 403). Deciding on the
 *   whole operation, rather than field by field as resolvers run, means a
 *   refused request makes no upstream call at all, not even for the ids it
 *   was allowed.
 * In `none` mode both steps are skipped and the Caller is null.
 */
import {
  getArgumentValues,
  getOperationAST,
  getVariableValues,
  Kind,
  type DocumentNode,
  getNamedType,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLError,
  type GraphQLSchema,
  type SelectionSetNode,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { createRemoteJWKSet, errors as jose, jwtVerify, type JWTPayload } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Caller } from '../schema/context.js';
import { gqlError, quote } from '../schema/errors.js';
import { requestId } from './request-id.js';
import { requestState } from './request-state.js';

/** Lets a token read any user's tags and attributes (its own need no scope). */
export const SCOPE_READ = 'tags:read';
/** Lets a token write tags and attributes, and name attribute slots: any mutation but pushMessage. */
export const SCOPE_WRITE = 'tags:write';
/** Lets a token run pushMessage. */
export const SCOPE_PUSH = 'push:send';
/** Root Mutation fields that need a scope other than tags:write. */
const MUTATION_SCOPES: Record<string, string> = { pushMessage: SCOPE_PUSH };

/** HS256 only with a shared secret; only asymmetric algorithms with a JWKS, so a public key can never act as an HMAC secret. */
const SECRET_ALGORITHMS = ['HS256'];
const JWKS_ALGORITHMS = ['RS256', 'ES256'];
/** Allowed clock skew between the token issuer and this gateway, for exp and nbf. */
const CLOCK_TOLERANCE_S = 5;
/**
 * Tokens checked recently, and how long one is taken on trust once checked. A client sends the same
 * token with every request, and checking it (an HMAC or a signature, through WebCrypto's promises)
 * cost as much as the rest of a single-user lookup. A remembered token is still refused once its exp
 * has passed; a key dropped from the JWKS is obeyed within TOKEN_TRUST_MS.
 */
const TOKENS_REMEMBERED = 1000;
const TOKEN_TRUST_MS = 60_000;

/**
 * Root Query fields that read only the users their arguments name, and how to
 * find those ids in the coerced arguments. Any other field needs `tags:read`.
 */
const USERS_READ: Record<string, (args: Record<string, unknown>) => unknown[]> = {
  user: (args) => [args.id],
  users: (args) => (Array.isArray(args.ids) ? args.ids : [args.ids]),
  // Federation (FEDERATION=true): a router's `_entities` reads the users its representations name.
  _entities: (args) => (Array.isArray(args.representations) ? args.representations : []).map(entityUserId),
};
/**
 * Root fields that read no user's data: any valid token may ask them (`_service` is the subgraph SDL that a
 * router composes).
 */
const HARMLESS_FIELDS = new Set(['__typename', '__schema', '__type', '_service', 'attributeNames']);
/** The User fields a mutation's answer may show of any user it wrote: the ones the writer named itself. */
const WRITER_KNOWS = new Set(['id', '__typename']);

export interface Auth {
  plugin: Plugin;
  /** The request's caller, once authenticated; null in `none` mode. */
  callerOf(request: Request): Caller | null;
  /**
   * What the plugin does as yoga starts parsing a request, for a path that parses it itself:
   * remembers its caller, or throws (UNAUTHENTICATED) when its token is not good. Nothing to wait
   * for (no promise) when there is nothing to check or the token is one it checked lately.
   */
  authenticate(request: Request): Promise<void> | void;
  /**
   * The error the plugin refuses the operation with (as it does, from its execute hook), or null
   * when the request's caller may run it: what a path that runs operations itself checks first.
   */
  denial(request: Request, args: OperationArgs): GraphQLError | null;
}

export function createAuth(auth: Config['auth'], log: Logger): Auth {
  if (auth.mode === 'none') return { plugin: {}, callerOf: () => null, authenticate: () => {}, denial: () => null };
  const verifier = new TokenVerifier(auth, log);
  const callers = requestState<Caller>('caller');
  const refused = (request: Request, caller: Caller | null, error: GraphQLError) =>
    log.debug(
      { requestId: requestId(request), sub: caller?.sub, code: error.extensions?.code, reason: error.message },
      'request refused',
    );
  const check = async (request: Request, authorization: string | null) => {
    try {
      callers.set(request, await verifier.authenticate(authorization));
    } catch (err) {
      refused(request, null, err as GraphQLError);
      throw err;
    }
  };
  const authenticate = (request: Request) => {
    const authorization = request.headers.get('authorization');
    const known = verifier.known(authorization);
    if (known) callers.set(request, known);
    else return check(request, authorization);
  };
  const denial = (request: Request, args: OperationArgs) => {
    const caller = callers.get(request);
    return caller ? authorize(caller, args) : unauthenticated('No bearer token was checked for this request');
  };
  const plugin: Plugin = {
    onRequestParse: ({ request }) => authenticate(request),
    onExecute({ args, setResultAndStopExecution }) {
      const request = (args.contextValue as { request: Request }).request;
      const denied = denial(request, args);
      if (denied) {
        refused(request, callers.get(request) ?? null, denied);
        setResultAndStopExecution({ errors: [denied] });
      }
    },
  };
  return { plugin, callerOf: (request) => callers.get(request) ?? null, authenticate, denial };
}

/** Checks bearer tokens against JWT_SECRET or JWT_JWKS_URL. */
class TokenVerifier {
  private readonly verify: (token: string) => Promise<JWTPayload>;
  /** Tokens that verified, by the whole token: its caller, its exp, and until when it is trusted unchecked. */
  private readonly checked = new LRUCache<string, { caller: Caller; expiresAt: number; trustedUntil: number }>({
    max: TOKENS_REMEMBERED,
  });

  constructor(
    private readonly auth: Config['auth'],
    private readonly log: Logger,
  ) {
    const claims = {
      issuer: auth.issuer,
      audience: auth.audience,
      clockTolerance: CLOCK_TOLERANCE_S,
      // A token without exp would be good forever; one without sub names nobody.
      requiredClaims: ['exp', 'sub'],
    };
    if (auth.jwtSecret) {
      const secret = new TextEncoder().encode(auth.jwtSecret);
      this.verify = async (token) =>
        (await jwtVerify(token, secret, { ...claims, algorithms: SECRET_ALGORITHMS })).payload;
    } else if (auth.jwksUrl) {
      const keys = createRemoteJWKSet(new URL(auth.jwksUrl), { timeoutDuration: 3000, cooldownDuration: 30_000 });
      this.verify = async (token) => (await jwtVerify(token, keys, { ...claims, algorithms: JWKS_ALGORITHMS })).payload;
    } else {
      throw new Error('AUTH_MODE=jwt needs JWT_SECRET or JWT_JWKS_URL (src/config.ts should have refused this config)');
    }
  }

  /** The caller of a token that verified lately and is still within its exp; undefined for any other header. */
  known(authorization: string | null): Caller | undefined {
    const token = authorization && tokenOf(authorization);
    const known = token ? this.checked.get(token) : undefined;
    const now = Date.now();
    // Within its exp (and the same clock tolerance jose allows): past it, it is checked again and refused.
    if (known && now < known.trustedUntil && now < known.expiresAt + CLOCK_TOLERANCE_S * 1000) return known.caller;
    return undefined;
  }

  /** The caller a token names; throws UNAUTHENTICATED when there is no good token. */
  async authenticate(authorization: string | null): Promise<Caller> {
    if (!authorization) throw unauthenticated('This gateway needs a token: send Authorization: Bearer <JWT>');
    const token = tokenOf(authorization);
    if (!token) throw unauthenticated('The Authorization header must be "Bearer <JWT>"');
    const remembered = this.known(authorization);
    if (remembered) return remembered;
    const now = Date.now();
    let payload: JWTPayload;
    try {
      payload = await this.verify(token);
    } catch (err) {
      throw unauthenticated(this.whyRefused(err));
    }
    if (typeof payload.sub !== 'string' || payload.sub === '')
      throw unauthenticated('The token has no "sub" (the caller\'s TIM account)');
    const scope = typeof payload.scope === 'string' ? payload.scope : '';
    const caller: Caller = { sub: payload.sub, scopes: new Set(scope.split(' ').filter(Boolean)) };
    // exp is required (requiredClaims), so verified tokens all have one.
    this.checked.set(token, { caller, expiresAt: (payload.exp ?? 0) * 1000, trustedUntil: now + TOKEN_TRUST_MS });
    return caller;
  }

  /** Says what was wrong with a token, without echoing it. */
  private whyRefused(err: unknown): string {
    if (err instanceof jose.JWTExpired) return 'The token has expired';
    if (err instanceof jose.JWTClaimValidationFailed) {
      return err.claim === 'nbf' ? 'The token is not valid yet (nbf)' : `The token was refused: ${err.message}`;
    }
    if (err instanceof jose.JOSEAlgNotAllowed) {
      return `The token's algorithm is not accepted here (accepted: ${(this.auth.jwtSecret ? SECRET_ALGORITHMS : JWKS_ALGORITHMS).join(', ')})`;
    }
    if (err instanceof jose.JWSSignatureVerificationFailed) return "The token's signature does not verify";
    if (err instanceof jose.JWKSNoMatchingKey) return 'No key of the JWKS matches the token';
    // jose throws its generic JOSEError only where the key set's answer is not a 200 or not JSON.
    const keySetUnreadable = err instanceof jose.JOSEError && err.code === jose.JOSEError.code;
    if (
      err instanceof jose.JWKSTimeout ||
      err instanceof jose.JWKSInvalid ||
      keySetUnreadable ||
      !(err instanceof jose.JOSEError)
    ) {
      // The key set could not be fetched or read: the caller is not at fault, but neither can the token be trusted.
      this.log.warn(
        { err: err instanceof Error ? `${err.name}: ${err.message}` : String(err) },
        'could not check a token against JWT_JWKS_URL',
      );
      return 'The token could not be checked: the key set (JWT_JWKS_URL) is unavailable';
    }
    return 'The token is not a valid signed JWT';
  }
}

export interface OperationArgs {
  schema: GraphQLSchema;
  document: DocumentNode;
  operationName?: string | null | undefined;
  variableValues?: Record<string, unknown> | null | undefined;
}

/**
 * The rules, all of them: pushMessage needs `push:send`, any other mutation
 * field `tags:write`; a query may read
 * the caller's own user (tags and attributes) freely, any other user with
 * `tags:read`, and `attributeNames` with any valid token; and so may a
 * mutation: one whose answer shows any User field but `id` of another user
 * (its tags or attributes as read after the write) needs `tags:read` too, or a
 * write token would read everyone through a write that changes nothing. Returns
 * the error to refuse the operation with, or null to let it run.
 *
 * What a query reads is found the way execution will find it: the selected
 * operation's root fields, through fragments, with their arguments coerced
 * against the same variables. `@skip`/`@include` are ignored, so a skipped field
 * still counts: the check can only be stricter than execution, never looser.
 */
export function authorize(caller: Caller, args: OperationArgs): GraphQLError | null {
  const allPowerful = caller.scopes.has(SCOPE_READ) && caller.scopes.has(SCOPE_WRITE);
  const operation = getOperationAST(args.document, args.operationName ?? undefined);
  // Yoga refuses such a request before this point; should one get here, decide nothing on a guess.
  if (!operation)
    return allPowerful
      ? null
      : forbidden('Name the one operation to run: what this token may do depends on it', SCOPE_READ);
  if (operation.operation !== 'query') {
    const scope = missingMutationScope(caller, operation.selectionSet, args.document);
    if (scope)
      return forbidden(
        `${scope === SCOPE_PUSH ? 'pushMessage' : `A ${operation.operation}`} needs the scope ${scope}`,
        scope,
      );
  }
  if (caller.scopes.has(SCOPE_READ)) return null;

  const variables = getVariableValues(args.schema, operation.variableDefinitions ?? [], args.variableValues ?? {});
  // Variables that do not coerce stop execution before any resolver runs; let it report them.
  if (variables.errors) return null;

  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of args.document.definitions)
    if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const isMutation = operation.operation !== 'query';
  const rootFields = (isMutation ? args.schema.getMutationType() : args.schema.getQueryType())?.getFields() ?? {};
  const others = new Set<string>();

  const readOf = (node: FieldNode): void => {
    const field = rootFields[node.name.value];
    if (isMutation) {
      // A write that answers nothing of a user's (PushTask, AttributeName, or only ids) reads nobody.
      if (!field || getNamedType(field.type).name !== 'User' || !readsUserData(node.selectionSet, fragments)) return;
      const ids = idsIn(getArgumentValues(field, node, variables.coerced));
      if (ids.length === 0) throw new UnknownReach(`the users ${node.name.value} answers with`);
      for (const id of ids) if (id !== caller.sub) others.add(id);
      return;
    }
    const usersRead = USERS_READ[node.name.value];
    if (!usersRead || !field) throw new UnknownReach(`the field ${node.name.value}`);
    for (const id of usersRead(getArgumentValues(field, node, variables.coerced))) {
      if (String(id) !== caller.sub) others.add(String(id));
    }
  };
  try {
    for (const node of fieldsOf(operation.selectionSet, fragments))
      if (!HARMLESS_FIELDS.has(node.name.value)) readOf(node);
  } catch (err) {
    // Whatever cannot be told apart from another user's data is treated as such.
    const what = err instanceof UnknownReach ? err.message : 'an argument that does not coerce';
    return forbidden(`This ${operation.operation} reads ${what}, which needs the scope ${SCOPE_READ}`, SCOPE_READ);
  }
  if (others.size === 0) return null;
  const [first] = others;
  const also = isMutation ? ` as well as ${SCOPE_WRITE} (ask for their ids only to need none)` : '';
  return forbidden(
    `This token may read only its own user's tags and attributes (${quote(caller.sub)}); reading ${quote(first)}` +
      `${others.size > 1 ? ` and ${others.size - 1} more` : ''} needs the scope ${SCOPE_READ}${also}`,
    SCOPE_READ,
  );
}

/**
 * The first scope the caller lacks among those the mutation's root fields need
 * (through fragments): `push:send` for pushMessage, `tags:write` for any other
 * field, and for a mutation whose fields cannot be told; null when it has them all.
 */
function missingMutationScope(caller: Caller, set: SelectionSetNode, document: DocumentNode): string | null {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const fields = fieldsOf(set, fragments).filter((f) => f.name.value !== '__typename');
  const needed = new Set(fields.map((f) => MUTATION_SCOPES[f.name.value] ?? SCOPE_WRITE));
  if (needed.size === 0) needed.add(SCOPE_WRITE);
  return [...needed].find((scope) => !caller.scopes.has(scope)) ?? null;
}

/** The fields a selection set selects, through fragments and inline fragments (each fragment once). */
function fieldsOf(
  set: SelectionSetNode,
  fragments: ReadonlyMap<string, FragmentDefinitionNode>,
  visited = new Set<string>(),
): FieldNode[] {
  return set.selections.flatMap((node) => {
    if (node.kind === Kind.FIELD) return [node];
    if (node.kind === Kind.INLINE_FRAGMENT) return fieldsOf(node.selectionSet, fragments, visited);
    const fragment = fragments.get(node.name.value);
    if (!fragment || visited.has(fragment.name.value)) return [];
    visited.add(fragment.name.value);
    return fieldsOf(fragment.selectionSet, fragments, visited);
  });
}

/** Whether a User selection asks for anything the writer did not send itself: any field but `id`. */
function readsUserData(set: SelectionSetNode | undefined, fragments: ReadonlyMap<string, FragmentDefinitionNode>) {
  return !!set && fieldsOf(set, fragments).some((f) => !WRITER_KNOWS.has(f.name.value));
}

/** The user ids a write's arguments name: every `ids` entry and every `id` field, at any depth. */
function idsIn(value: unknown, key = ''): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => (key === 'ids' ? [String(v)] : idsIn(v, key)));
  if (value === null || typeof value !== 'object') return key === 'id' ? [String(value)] : [];
  return Object.entries(value).flatMap(([k, v]) => idsIn(v, k));
}

class UnknownReach extends Error {}

/** The JWT of an `Authorization: Bearer <JWT>` header; null for any other header. */
function tokenOf(authorization: string): string | null {
  return /^Bearer +([\w-]+\.[\w-]*\.[\w-]*) *$/i.exec(authorization)?.[1] ?? null;
}

/** The user a `User` representation (`{ __typename: "User", id }`) names; any other one is beyond what we can tell. */
function entityUserId(representation: unknown): string {
  const { __typename, id } = (representation ?? {}) as { __typename?: unknown; id?: unknown };
  if (__typename !== 'User' || (typeof id !== 'string' && typeof id !== 'number'))
    throw new UnknownReach('a representation that is not a User with an id');
  return String(id);
}

function unauthenticated(message: string): GraphQLError {
  return gqlError('UNAUTHENTICATED', message, {
    http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } },
  });
}

function forbidden(message: string, scope: string): GraphQLError {
  return gqlError('FORBIDDEN', message, { requiredScope: scope, http: { status: 403 } });
}
