/**
 * Starts the real gateway over HTTP against a real emulator, the way users
 * run it: the gateway is given the emulator's URL and credentials through the
 * same environment variables as production.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config.js';
import { TimEmulator, type EmulatorOptions } from '../../src/emulator/index.js';
import { createLogger } from '../../src/logger.js';
import { startGateway, type Gateway, type GatewayOptions } from '../../src/server.js';
import { LOG_DIR } from './paths.js';

export const SDKAPPID = 1400012345;
export const ADMIN = 'administrator';

export interface GraphQLResponse<D = Record<string, unknown>> {
  status: number;
  headers: Headers;
  data?: D | null;
  errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, unknown> }>;
  body: string;
}

export interface TestRig {
  gateway: Gateway;
  emulator: TimEmulator;
  secretKey: string;
  url: string;
  /** POSTs one GraphQL operation to /graphql. */
  query<D = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    headers?: Record<string, string>,
  ): Promise<GraphQLResponse<D>>;
  close(): Promise<void>;
}

export interface RigOptions {
  env?: Record<string, string>;
  emulator?: Partial<EmulatorOptions>;
  gateway?: GatewayOptions;
  /** Reuse an emulator (several gateways on one upstream). */
  sharedEmulator?: { emulator: TimEmulator; secretKey: string };
}

export async function startRig(opts: RigOptions = {}): Promise<TestRig> {
  const secretKey = opts.sharedEmulator?.secretKey ?? randomBytes(24).toString('hex');
  const emulator =
    opts.sharedEmulator?.emulator ??
    (await TimEmulator.start({ sdkappid: SDKAPPID, secretKey, adminIdentifier: ADMIN, port: 0, ...opts.emulator }));
  const config = loadConfig({
    PORT: '0',
    TIM_SDKAPPID: String(SDKAPPID),
    TIM_SECRET_KEY: secretKey,
    TIM_BASE_URL: emulator.url,
    AUTH_MODE: 'none',
    LOG_LEVEL: 'debug',
    ...opts.env,
  });
  const logger = createLogger(config.logLevel, {
    destination: pino.destination({ dest: join(LOG_DIR, `${randomUUID()}.log`), sync: true }),
  });
  const gateway = await startGateway(config, { logger, ...opts.gateway });
  const url = gateway.url;
  return {
    gateway,
    emulator,
    secretKey,
    url,
    query: (q, variables, headers) => postGraphQL(url, q, variables, headers),
    close: async () => {
      await gateway.close();
      if (!opts.sharedEmulator) await emulator.close();
    },
  };
}

export async function postGraphQL<D>(
  url: string,
  query: string,
  variables?: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<D>> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...headers,
    },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.text();
  let parsed: { data?: D | null; errors?: GraphQLResponse['errors'] } = {};
  try {
    parsed = JSON.parse(body);
  } catch {
    // not JSON: the test asserts on status and body
  }
  return { status: res.status, headers: res.headers, data: parsed.data, errors: parsed.errors, body };
}

/** Calls the emulator saw for one command. */
export function callsOf(emulator: TimEmulator, command = 'im_get_tag') {
  return emulator.calls.filter((c) => c.command === command);
}
