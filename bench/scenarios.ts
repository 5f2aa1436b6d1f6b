/**
 * What the bench measures. Issue 4: four shapes of load, each with
 * cross-request coalescing on and off; issue 5: the ten-user load over two
 * gateways behind one Redis, and a hot set of ids with the tag cache on;
 * issue 11: reads under a load of tag writes, and tags with attributes.
 */
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
  /** Run only when Redis answers; the gateways get REDIS_URL. */
  needsRedis?: boolean;
  /**
   * A second load at a fixed rate beside the measured one (its requests are not counted in the row).
   * TODO(merge): bench/run.ts does not drive it yet; the row's targets (issue 11: >= 9,000 ok lookups/s, no
   * command over 100 calls in a sliding second) belong in run.ts's target list with it.
   */
  background?: { requestsPerSecond: number; body(): string };
}

const USER_QUERY = 'query User($id: ID!) { user(id: $id) { id tags } }';
const USERS_QUERY = 'query Users($ids: [ID!]!) { users(ids: $ids) { id tags } }';

const TAGS_AND_ATTRIBUTES_QUERY =
  'query Users($ids: [ID!]!) { users(ids: $ids) { id tags attributes { name value } } }';
/** One user, one tag: one im_add_tag call per request. */
const ADD_TAG_MUTATION = 'mutation Add($id: ID!) { addUserTags(input: [{ id: $id, tags: ["bench-write"] }]) { id } }';

const usersBody = (ids: string[]) => JSON.stringify({ query: USERS_QUERY, variables: { ids } });
const fixed = (body: string) => () => body;

/** Ids the hot-set scenarios draw from: few enough that the cache holds them all. */
export const HOT_SET_SIZE = 1000;
const HOT_IDS_PER_REQUEST = 100;
/** The cache TTL of the hot-set scenarios: entries expire and are read again during the run. */
const HOT_CACHE_TTL_MS = 5000;

export const SCENARIOS: Scenario[] = [
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
    body: () => JSON.stringify({ query: USER_QUERY, variables: { id: randomAccounts(1)[0] } }),
    varies: true,
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
