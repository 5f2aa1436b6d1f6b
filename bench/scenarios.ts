/**
 * What the bench measures. Issue 4: four shapes of load, each with
 * cross-request coalescing on and off; issue 5: the ten-user load over two
 * gateways behind one Redis, and a hot set of ids with the tag cache on;
 * issue 11: reads under a load of tag writes, and tags with attributes;
 * issue 14: the gateway's own cost with no upstream limit at all, side by
 * side with the reference gateway, and the single-user load at the real
 * limit against a baseline build.
 */
import { createHmac } from 'node:crypto';
import { firstAccounts, randomAccounts } from './users.js';

export type Mode = 'on' | 'off';

export interface Scenario {
  /** For `--only`. */
  key: string;
  name: string;
  /** All connections, spread round-robin over the gateways. */
  connections: number;
  gateways: number;
  modes: Mode[];
  body(): string;
  /** Whether body() draws new ids each time. */
  varies: boolean;
  /** Gateway environment on top of the bench's own. */
  env?: Record<string, string>;
  /** Headers every request of the load carries (a bearer token, say). */
  headers?: Record<string, string>;
  /** Run only when Redis answers; the gateways get REDIS_URL. */
  needsRedis?: boolean;
  /**
   * A second load at a fixed rate beside the measured one (its requests are not counted in the row).
   */
  background?: { requestsPerSecond: number; body(): string };
  /**
   * `unlimited`: an emulator that never refuses a call for rate, and gateways with
   * TIM_MAX_QPS=100000, so what is measured is the servers' own cost. Default `limited`.
   */
  upstream?: 'limited' | 'unlimited';
  /** Also run the same load on the reference gateway (../shared/reference/naive.mjs). */
  reference?: boolean;
  /** Also run the same load (coalescing on) on the gateway built at `--baseline <rev>`. */
  baseline?: boolean;
  /** Also run the same load on the floor (bench/floor.mjs): what the machine leaves to any server. */
  floor?: boolean;
  /** Also run the same single-user load on the ceiling (this build's upstream layer with no GraphQL, bench/serve.ts). */
  ceiling?: boolean;
}

/** The gateways' budget when the upstream has no limit: the most the config accepts. */
export const UNLIMITED_QPS = '100000';

const USER_QUERY = 'query User($id: ID!) { user(id: $id) { id tags } }';
const USERS_QUERY = 'query Users($ids: [ID!]!) { users(ids: $ids) { id tags } }';

const TAGS_AND_ATTRIBUTES_QUERY =
  'query Users($ids: [ID!]!) { users(ids: $ids) { id tags attributes { name value } } }';
/** One user, one tag: one im_add_tag call per request. */
const ADD_TAG_MUTATION = 'mutation Add($id: ID!) { addUserTags(input: [{ id: $id, tags: ["bench-write"] }]) { id } }';
const singleUserBody = () => JSON.stringify({ query: USER_QUERY, variables: { id: randomAccounts(1)[0] } });
const usersBody = (ids: string[]) => JSON.stringify({ query: USERS_QUERY, variables: { ids } });
const fixed = (body: string) => () => body;

/** The JWT secret of the `single-jwt` gateways, and one HS256 token that reads any user, valid for a day. */
const JWT_SECRET = 'bench-jwt-secret-0123456789-abcdefghijklmnop';
function benchToken(): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ sub: 'bench', scope: 'tags:read', iat: now, exp: now + 86_400 })}`;
  return `${unsigned}.${createHmac('sha256', JWT_SECRET).update(unsigned).digest('base64url')}`;
}

/** Ids the hot-set scenarios draw from: few enough that the cache holds them all. */
export const HOT_SET_SIZE = 1000;
const HOT_IDS_PER_REQUEST = 100;
/** The cache TTL of the hot-set scenarios: entries expire and are read again during the run. */
const HOT_CACHE_TTL_MS = 5000;

export const SCENARIOS: Scenario[] = [
  {
    key: 'free-hundred',
    name: 'one 100-user query, 50 conns, no upstream limit',
    connections: 50,
    gateways: 1,
    modes: ['on'],
    body: fixed(usersBody(firstAccounts(100))),
    varies: false,
    upstream: 'unlimited',
    env: { TIM_MAX_QPS: UNLIMITED_QPS },
    reference: true,
    baseline: true,
  },
  {
    key: 'free-single',
    name: 'single user, random ids, 200 conns, no upstream limit',
    connections: 200,
    gateways: 1,
    modes: ['on'],
    body: singleUserBody,
    varies: true,
    upstream: 'unlimited',
    env: { TIM_MAX_QPS: UNLIMITED_QPS },
    reference: true,
    baseline: true,
  },
  {
    key: 'hundred',
    name: 'one 100-user query, 50 conns',
    connections: 50,
    gateways: 1,
    modes: ['on', 'off'],
    body: fixed(usersBody(firstAccounts(100))),
    varies: false,
  },
  {
    key: 'single',
    name: 'single user, random ids, 200 conns',
    connections: 200,
    gateways: 1,
    modes: ['on', 'off'],
    body: singleUserBody,
    varies: true,
    baseline: true,
  },
  {
    // At 200 connections the upstream's round trip caps single-user lookups (Little's law: 200 requests in
    // flight / (20 ms + the wait for the next paced call + the gateway's own time)); twice as many connections
    // fill the calls, so what is left is the gateway's cost per request.
    key: 'single-wide',
    name: 'single user, random ids, 400 conns',
    connections: 400,
    gateways: 1,
    modes: ['on'],
    body: singleUserBody,
    varies: true,
    baseline: true,
    floor: true,
    ceiling: true,
  },
  {
    // What a production gateway does (AUTH_MODE=jwt is its default): every request carries a bearer token.
    key: 'single-jwt',
    name: 'single user, random ids, 400 conns, a JWT on every request',
    connections: 400,
    gateways: 1,
    modes: ['on'],
    body: singleUserBody,
    varies: true,
    env: { AUTH_MODE: 'jwt', JWT_SECRET },
    headers: { authorization: `Bearer ${benchToken()}` },
    baseline: true,
  },
  {
    key: 'ten',
    name: 'ten random users per request, 100 conns',
    connections: 100,
    gateways: 1,
    modes: ['on', 'off'],
    body: () => usersBody(randomAccounts(10)),
    varies: true,
  },
  {
    key: 'ten-writes',
    name: 'ten random users per request, 100 conns, tag writes at 50 calls/s beside',
    connections: 100,
    gateways: 1,
    modes: ['on'],
    body: () => usersBody(randomAccounts(10)),
    varies: true,
    background: {
      requestsPerSecond: 50,
      body: () => JSON.stringify({ query: ADD_TAG_MUTATION, variables: { id: randomAccounts(1)[0] } }),
    },
  },
  {
    key: 'ten-attrs',
    name: 'tags and attributes of ten random users per request, 100 conns',
    connections: 100,
    gateways: 1,
    modes: ['on'],
    body: () => JSON.stringify({ query: TAGS_AND_ATTRIBUTES_QUERY, variables: { ids: randomAccounts(10) } }),
    varies: true,
  },
  {
    key: 'thousand',
    name: 'one 1,000-user query, 4 conns',
    connections: 4,
    gateways: 1,
    modes: ['on', 'off'],
    body: fixed(usersBody(firstAccounts(1000))),
    varies: false,
  },
  {
    key: 'hot',
    name: `hot set (${HOT_IDS_PER_REQUEST} of ${HOT_SET_SIZE} ids), memory cache, 50 conns`,
    connections: 50,
    gateways: 1,
    modes: ['on'],
    body: () => usersBody(randomAccounts(HOT_IDS_PER_REQUEST, HOT_SET_SIZE)),
    varies: true,
    env: { TAGS_CACHE_TTL_MS: String(HOT_CACHE_TTL_MS) },
  },
  {
    key: 'redis-ten',
    name: 'ten random users per request, 2 gateways + Redis, 2x50 conns',
    connections: 100,
    gateways: 2,
    modes: ['on'],
    body: () => usersBody(randomAccounts(10)),
    varies: true,
    env: { GATEWAY_REPLICAS: '2' },
    needsRedis: true,
  },
  {
    // The 400-connection single-user load on two gateway processes sharing one budget: the second core.
    key: 'redis-single-wide',
    name: 'single user, random ids, 2 gateways + Redis, 2x200 conns',
    connections: 400,
    gateways: 2,
    modes: ['on'],
    body: singleUserBody,
    varies: true,
    env: { GATEWAY_REPLICAS: '2' },
    needsRedis: true,
  },
  {
    key: 'redis-hot-1',
    name: `hot set (${HOT_IDS_PER_REQUEST} of ${HOT_SET_SIZE} ids), 1 gateway + Redis cache, 50 conns`,
    connections: 50,
    gateways: 1,
    modes: ['on'],
    body: () => usersBody(randomAccounts(HOT_IDS_PER_REQUEST, HOT_SET_SIZE)),
    varies: true,
    env: { TAGS_CACHE_TTL_MS: String(HOT_CACHE_TTL_MS) },
    needsRedis: true,
  },
  {
    key: 'redis-hot',
    name: `hot set (${HOT_IDS_PER_REQUEST} of ${HOT_SET_SIZE} ids), 2 gateways + Redis cache, 2x25 conns`,
    connections: 50,
    gateways: 2,
    modes: ['on'],
    body: () => usersBody(randomAccounts(HOT_IDS_PER_REQUEST, HOT_SET_SIZE)),
    varies: true,
    env: { GATEWAY_REPLICAS: '2', TAGS_CACHE_TTL_MS: String(HOT_CACHE_TTL_MS) },
    needsRedis: true,
  },
];
