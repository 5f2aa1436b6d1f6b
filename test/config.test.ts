/** Configuration: defaults, emulator vs real mode, and one clear line for each bad setting. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

const real = { TIM_SDKAPPID: '1400000001', TIM_SECRET_KEY: 'k'.repeat(40) };
const jwt = { JWT_SECRET: 's'.repeat(32) };

function problem(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('runs on the emulator with open auth and GraphiQL when no credentials are given', () => {
    const c = loadConfig({});
    expect(c.tim.mode).toBe('emulator');
    expect(c).toMatchObject({
      port: 4000,
      host: '127.0.0.1',
      maxQps: 100,
      cacheTtlMs: 0,
      maxIdsPerRequest: 1000,
      graphiql: true,
      introspection: true,
      replicas: 1,
    });
    expect(c.auth.mode).toBe('none');
    expect(c.tim.timeoutMs).toBe(5000);
    expect(c.tim.adminIdentifier).toBe('administrator');
  });

  it('uses real TIM with JWT auth when both credentials are given', () => {
    const c = loadConfig({ ...real, ...jwt });
    expect(c.tim).toMatchObject({ mode: 'remote', sdkappid: 1400000001, baseUrl: 'https://console.tim.qq.com' });
    expect(c.auth.mode).toBe('jwt');
    expect(c.graphiql).toBe(false);
    // Issue 15: the schema is not for strangers with real credentials.
    expect(c.introspection).toBe(false);
    expect(loadConfig({ ...real, ...jwt, GRAPHQL_INTROSPECTION: 'true' }).introspection).toBe(true);
  });

  it('maps TIM_REGION to its domain', () => {
    expect(loadConfig({ ...real, ...jwt, TIM_REGION: 'singapore' }).tim.baseUrl).toBe(
      'https://adminapisgp.im.qcloud.com',
    );
    expect(loadConfig({ ...real, ...jwt, TIM_BASE_URL: 'http://127.0.0.1:4100/' }).tim.baseUrl).toBe(
      'http://127.0.0.1:4100',
    );
  });

  it.each([
    [{ TIM_SDKAPPID: '1400000001' }, /^TIM_SECRET_KEY: is required/],
    [{ TIM_SECRET_KEY: 'abc' }, /^TIM_SDKAPPID: is required/],
    [{ TIM_SDKAPPID: 'abc', TIM_SECRET_KEY: 'k' }, /^TIM_SDKAPPID: /],
    [{ TIM_SDKAPPID: '-5', TIM_SECRET_KEY: 'k' }, /^TIM_SDKAPPID: /],
    [{ PORT: 'http' }, /^PORT: /],
    [{ TIM_MAX_QPS: '0' }, /^TIM_MAX_QPS: /],
    [{ REQUEST_TIMEOUT_MS: '100' }, /^REQUEST_TIMEOUT_MS: /],
    [{ TIM_MAX_QPS: '4', GATEWAY_REPLICAS: '5' }, /^GATEWAY_REPLICAS: /],
    [{ TIM_REGION: 'mars' }, /^TIM_REGION: /],
    [{ TIM_BASE_URL: 'ftp://x' }, /^TIM_BASE_URL: /],
    [{ REDIS_URL: 'localhost:6379' }, /^REDIS_URL: /],
    [{ AUTH_MODE: 'maybe' }, /^AUTH_MODE: /],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL: /],
    [{ ...real }, /^JWT_SECRET: .*AUTH_MODE=none/],
    [{ AUTH_MODE: 'jwt' }, /^JWT_SECRET: /],
    // Number() would read these as 16, 1000 and 80: only plain decimal digits are a number here.
    [{ PORT: '0x10' }, /^PORT: /],
    [{ PORT: '1e3' }, /^PORT: /],
    [{ PORT: ' 80' }, /^PORT: /],
    [{ TIM_SDKAPPID: '0x53', TIM_SECRET_KEY: 'k' }, /^TIM_SDKAPPID: /],
    [{ MAX_IDS_PER_REQUEST: '1e2' }, /^MAX_IDS_PER_REQUEST: /],
    // Past 2^31 - 1 ms a timer fires at once: every call and every shutdown drain would end immediately.
    [{ TIM_TIMEOUT_MS: '99999999999' }, /^TIM_TIMEOUT_MS: /],
    [{ TIM_TIMEOUT_MS: '1e12' }, /^TIM_TIMEOUT_MS: /],
    // The admin account is a TIM UserID: 1 to 32 bytes of printable ASCII.
    [{ TIM_ADMIN_IDENTIFIER: 'admin\u00e9' }, /^TIM_ADMIN_IDENTIFIER: .*printable ASCII/],
    [{ TIM_ADMIN_IDENTIFIER: 'a\nb' }, /^TIM_ADMIN_IDENTIFIER: /],
    [
      { TIM_ADMIN_IDENTIFIER: '\u7ba1\u7406\u5458\u7ba1\u7406\u5458\u7ba1\u7406\u5458\u7ba1\u7406\u5458' },
      /^TIM_ADMIN_IDENTIFIER: /,
    ],
    // An origin is scheme://host[:port]; these would never match a browser's Origin header, or match too much.
    [{ CORS_ORIGINS: 'https://app.example.com/' }, /^CORS_ORIGINS: .*app\.example\.com/],
    [{ CORS_ORIGINS: 'https://ok.example.com, *' }, /^CORS_ORIGINS: /],
    [{ CORS_ORIGINS: 'null' }, /^CORS_ORIGINS: /],
    [{ CORS_ORIGINS: 'app.example.com' }, /^CORS_ORIGINS: /],
    // The client appends /v4/...: a query, fragment or credentials in the origin would break every call.
    [{ TIM_BASE_URL: 'not a url' }, /^TIM_BASE_URL: /],
    [{ TIM_BASE_URL: 'https://x.example.com/?a=1' }, /^TIM_BASE_URL: /],
    [{ TIM_BASE_URL: 'https://x.example.com#top' }, /^TIM_BASE_URL: /],
    [{ TIM_BASE_URL: 'https://user:pass@x.example.com' }, /^TIM_BASE_URL: /],
    [{ HOST: 'exa mple' }, /^HOST: /],
    [{ HOST: 'http://127.0.0.1' }, /^HOST: /],
    // Issue 15: secrets only over https, except to this machine.
    [{ TIM_BASE_URL: 'http://console.tim.qq.com' }, /^TIM_BASE_URL: must be https:\/\//],
    [{ TIM_BASE_URL: 'http://10.0.0.5:4100' }, /^TIM_BASE_URL: must be https:\/\//],
    [{ JWT_JWKS_URL: 'http://issuer.example.com/jwks' }, /^JWT_JWKS_URL: must be https:\/\//],
    [{ ALLOWED_HOSTS: 'https://api.example.com' }, /^ALLOWED_HOSTS: /],
    [{ HTTP_HEADERS_TIMEOUT_MS: '5000', HTTP_BODY_TIMEOUT_MS: '1000' }, /^HTTP_BODY_TIMEOUT_MS: /],
    [{ OVERLOAD_MAX_IN_FLIGHT: '1' }, /^OVERLOAD_MAX_IN_FLIGHT: /],
  ])('refuses %j with one line naming the variable', (env, expected) => {
    const message = problem(env as Record<string, string>);
    expect(message).toMatch(expected);
    expect(message).not.toContain('\n');
  });

  it('never echoes the secret key', () => {
    const message = problem({ TIM_SECRET_KEY: 'very-secret-value' });
    expect(message).not.toContain('very-secret-value');
  });

  it('takes the values these checks must not refuse', () => {
    const c = loadConfig({
      PORT: '080',
      HOST: '::1',
      TIM_ADMIN_IDENTIFIER: 'admin user_1',
      CORS_ORIGINS: 'https://app.example.com, http://localhost:5173',
      TIM_TIMEOUT_MS: '120000',
    });
    expect(c).toMatchObject({
      port: 80,
      host: '::1',
      corsOrigins: ['https://app.example.com', 'http://localhost:5173'],
    });
    expect(c.tim).toMatchObject({ adminIdentifier: 'admin user_1', timeoutMs: 120_000 });
    for (const host of ['0.0.0.0', 'localhost', 'gateway.internal', '::', 'fe80::1%eth0'])
      expect(loadConfig({ HOST: host }).host).toBe(host);
    expect(loadConfig({ ...real, ...jwt, TIM_BASE_URL: 'https://proxy.example.com/tim/' }).tim.baseUrl).toBe(
      'https://proxy.example.com/tim',
    );
  });

  it('takes plain http to loopback addresses, and the Host names to answer', () => {
    for (const u of ['http://127.0.0.1:4100', 'http://localhost:4100', 'http://[::1]:4100'])
      expect(loadConfig({ ...real, ...jwt, TIM_BASE_URL: u }).tim.baseUrl).toBe(u);
    expect(loadConfig({ JWT_JWKS_URL: 'http://127.0.0.1:9000/jwks', AUTH_MODE: 'jwt' }).auth.jwksUrl).toBeDefined();
    expect(loadConfig({}).allowedHosts).toEqual(['localhost', '127.0.0.1', '[::1]']);
    expect(loadConfig({ HOST: 'gw.internal', ALLOWED_HOSTS: 'API.example.com, fd00::1' }).allowedHosts).toEqual([
      'localhost',
      '127.0.0.1',
      '[::1]',
      'gw.internal',
      'api.example.com',
      '[fd00::1]',
    ]);
    // Behind a load balancer the names clients use cannot be guessed: any Host, with a warning at start.
    expect(loadConfig({ HOST: '0.0.0.0' }).allowedHosts).toBe('any');
    expect(loadConfig({ HOST: '0.0.0.0', ALLOWED_HOSTS: 'api.example.com' }).allowedHosts).toContain('api.example.com');
    expect(loadConfig({ ALLOWED_HOSTS: '*' }).allowedHosts).toBe('any');
    expect(loadConfig({}).http).toEqual({
      headersTimeoutMs: 5000,
      bodyTimeoutMs: 10_000,
      keepAliveTimeoutMs: 5000,
      maxConnections: 1024,
    });
    expect(loadConfig({}).overload).toEqual({ lagMs: 500, maxInFlight: 512 });
  });

  it('serves the federation subgraph only with FEDERATION=true', () => {
    expect(loadConfig({}).federation).toBe(false);
    expect(loadConfig({ FEDERATION: 'true' }).federation).toBe(true);
    expect(problem({ FEDERATION: 'on' })).toMatch(/^FEDERATION: /);
  });

  it('lets real credentials run without auth only when asked to on purpose', () => {
    expect(loadConfig({ ...real, AUTH_MODE: 'none' }).auth.mode).toBe('none');
  });
});
