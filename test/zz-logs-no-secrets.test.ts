/**
 * Issue 6: nothing a gateway logs holds the TIM secret key, a usersig or a
 * bearer token. Every gateway the suite starts (startRig) logs at debug level
 * into test/artifacts/logs/, which global-setup empties at the start of a run.
 *
 * This file is self-sufficient: it first runs a workload of its own through a
 * gateway (reads, writes, refusals, bad input, and upstream failures that are
 * retried, re-signed or given up on), then scans every log file there, its
 * own and those of every test file that ran before it. Its own secrets it
 * looks for exactly; the other files' secrets (random per rig) it finds by
 * their shape: usersig parameters and values, JWTs, and the long hex strings
 * every test secret key is made of.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signUserSig } from '../src/tim/usersig.js';
import { ADMIN, SDKAPPID, startRig, type TestRig } from './helpers/gateway.js';
import { LOG_DIR } from './helpers/paths.js';
import { bearer, JWT_SECRET, token } from './security/tokens.js';

/** What a leaked secret looks like, whoever's it is. */
const SHAPES: Array<[string, RegExp]> = [
  ['a usersig query parameter', /usersig=(?!\[redacted\])[^&\s"]/i],
  ['a usersig field', /"usersig"\s*:\s*"(?!\[redacted\])/i],
  ["a usersig (Tencent's base64 of a zlib stream)", /eJ[\w*-]{60,}/],
  ['a JWT', /eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]*/],
  ['a bearer credential', /bearer\s+(?!<)[\w.~+/-]{8,}/i],
  ['a hex secret key (every test key is 24 or 32 random bytes in hex)', /[0-9a-f]{40,}/i],
];

let rig: TestRig;
const sent: string[] = [];

beforeAll(async () => {
  rig = await startRig({ env: { AUTH_MODE: 'jwt', JWT_SECRET, REQUEST_TIMEOUT_MS: '2000', TIM_TIMEOUT_MS: '300' } });
  const plain = { issuer: null, audience: null };
  const reader = await token({ ...plain, scope: 'tags:read tags:write' });
  const own = await token({ ...plain, sub: 'bob' });
  const expired = await token({ ...plain, expiresIn: -60 });
  sent.push(reader, own, expired);
  const q = (query: string, jwt = reader, variables?: Record<string, unknown>) =>
    rig.query(query, variables, bearer(jwt));

  await q('{ users(ids: ["alice", "bob", "carol"]) { id tags } }');
  await q('mutation { addUserTags(input: [{ id: "alice", tags: ["logs-test"] }]) { id tags } }');
  await q('mutation { removeUserTags(input: [{ id: "alice", tags: ["logs-test"] }]) { id tags } }');
  await q('{ user(id: "alice") { tags } }', own);
  await q('{ user(id: "alice") { tags } }', expired);
  await rig.query('{ user(id: "alice") { tags } }', undefined, { authorization: `Bearer ${JWT_SECRET}` });
  await q('{ user(id: "") { tags } }');
  await q('{ nosuchfield }');
  for (const fault of [
    { errorCode: 91000 },
    { errorCode: 70001 },
    { httpStatus: 502 },
    { garbage: true },
    { hangMs: 500 },
    { errorCode: 20001 },
  ]) {
    rig.emulator.injectFault(fault, { count: 2 });
    await q('{ user(id: "carol") { tags } }');
    rig.emulator.clearFaults();
  }
  for (const call of rig.emulator.calls) if (call.query.usersig) sent.push(call.query.usersig);
  await rig.close();
});
afterAll(() => rig?.close());

function logFiles(): Array<{ name: string; text: string }> {
  return readdirSync(LOG_DIR)
    .filter((f) => f.endsWith('.log'))
    .map((name) => ({ name, text: readFileSync(join(LOG_DIR, name), 'utf8') }));
}

describe('logs', () => {
  it('hold the workload: upstream calls, retries and refusals were logged at debug', () => {
    const all = logFiles()
      .map((f) => f.text)
      .join('\n');
    expect(all).toMatch(/"msg":"upstream call"/);
    expect(all).toMatch(/"code":"UNAUTHENTICATED"/);
    expect(all).toMatch(/"code":"FORBIDDEN"/);
    // The workload reached the upstream, failures included, so usersigs were sent and retried.
    const codes = rig.emulator.calls.map((c) => c.errorCode);
    expect(codes).toEqual(expect.arrayContaining([0, 91000, 70001, -1]));
    expect(sent.length).toBeGreaterThan(10);
  });

  it("hold none of this file's own secrets: the secret key, the JWT secret, any usersig sent or any token", () => {
    const secrets = [rig.secretKey, JWT_SECRET, ...sent];
    for (const { name, text } of logFiles()) {
      for (const secret of secrets) expect(text.includes(secret), `${name} holds a secret`).toBe(false);
    }
  });

  it('would catch each kind of secret by its shape', () => {
    const usersig = signUserSig(
      { sdkappid: SDKAPPID, identifier: ADMIN, time: 1_700_000_000, expire: 86400 },
      rig.secretKey,
    );
    const samples = [
      `usersig=${usersig}`,
      JSON.stringify({ usersig }),
      usersig,
      sent[0]!,
      `authorization: Bearer ${sent[0]}`,
      rig.secretKey,
    ];
    for (const sample of samples)
      expect(
        SHAPES.some(([, shape]) => shape.test(sample)),
        sample,
      ).toBe(true);
    expect(
      SHAPES.some(([, shape]) =>
        shape.test(JSON.stringify({ usersig: '[redacted]', url: '/v4/x?usersig=[redacted]' })),
      ),
    ).toBe(false);
  });

  it('hold nothing shaped like a secret, in the logs of every gateway the suite has started so far', () => {
    const files = logFiles();
    expect(files.length).toBeGreaterThan(0);
    const found: string[] = [];
    for (const { name, text } of files) {
      text.split('\n').forEach((line, i) => {
        for (const [what, shape] of SHAPES) {
          const match = shape.exec(line);
          if (match) found.push(`${name}:${i + 1}: ${what}: ${match[0].slice(0, 24)}...`);
        }
      });
    }
    expect(found).toEqual([]);
  });
});
