/**
 * Issue 7: GraphiQL in a real browser (Debian's Chromium, driven by playwright-core), with the
 * network closed to everything but the gateway: the page must work with no CDN at all.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { Kind, parse, validate } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDocument, PUSH_EXAMPLE } from '../../src/graphiql.js';
import { schema } from '../../src/schema/index.js';
import { ARTIFACTS } from '../helpers/paths.js';
import { callsOf, startRig, type TestRig } from '../helpers/gateway.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const JWT_SECRET = 'a-test-secret-of-at-least-32-characters!';
const DEMO_USERS = ['alice', 'bob', 'carol', 'frank'];
/** The demo users the example push reaches (data/demo-users.json): it must reach someone. */
const DEMO_VIPS = (
  JSON.parse(readFileSync(new URL('../../data/demo-users.json', import.meta.url), 'utf8')) as Array<{
    To_Account: string;
    Tags: string[];
  }>
).filter((u) => u.Tags.includes('vip'));

// In CI (.ci/run installs Chromium) a missing browser is a failure, never a skip.
const skip = !existsSync(CHROMIUM) && !process.env.CI;
const title = skip
  ? `GraphiQL in Chromium (SKIPPED: ${CHROMIUM} is missing; install it with "apt-get install chromium")`
  : 'GraphiQL in Chromium';

/** A page whose every request to anything but `origin` is aborted and recorded. */
async function closedPage(
  browser: Browser,
  origin: string,
): Promise<{ context: BrowserContext; page: Page; aborted: string[]; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const aborted: string[] = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url.startsWith('data:') || url.startsWith('blob:')) return route.continue();
    aborted.push(url);
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  return { context, page, aborted, errors };
}

/** What an editor pane shows, as plain text (the editor draws spaces as no-break spaces). */
async function textOf(locator: Locator): Promise<string> {
  return (await locator.innerText()).replace(/\u00a0/g, ' ');
}

describe.skipIf(skip)(title, () => {
  let browser: Browser;
  const rigs: TestRig[] = [];

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await Promise.all(rigs.map((r) => r.close()));
  });

  it(
    'opens GraphiQL, runs DemoUsers from the default document and shows the real tags',
    { timeout: 90_000 },
    async () => {
      const rig = await startRig({ env: { GRAPHIQL: 'true', GRAPHQL_INTROSPECTION: 'true' } });
      rigs.push(rig);
      const { context, page, aborted, errors } = await closedPage(browser, rig.url);

      // Issue 15: GraphiQL's own introspection query fits inside the depth, alias and cost limits.
      const introspection = page.waitForResponse(
        (r) => r.request().method() === 'POST' && (r.request().postData() ?? '').includes('__schema'),
        { timeout: 60_000 },
      );
      await page.goto(`${rig.url}/graphql`, { timeout: 60_000 });
      const schemaAnswer = await introspection;
      expect(schemaAnswer.status()).toBe(200);
      const loaded = (await schemaAnswer.json()) as { data?: { __schema?: { types: Array<{ name: string }> } } };
      expect(loaded.data?.__schema?.types.map((t) => t.name)).toContain('User');
      const run = page.locator('.graphiql-execute-button');
      await run.waitFor({ timeout: 60_000 });
      // The document holds several operations: GraphiQL asks which one to run.
      await run.click();
      await page.getByRole('menuitem', { name: 'DemoUsers', exact: true }).click();

      const result = page.locator('.graphiql-response');
      await expect.poll(() => textOf(result), { timeout: 30_000 }).toMatch(/"frank"[\s\S]*\}\s*$/);
      // The pane shows the whole answer: exactly the emulator's tags of each demo user.
      const shown = JSON.parse(await textOf(result)) as unknown;
      expect(shown).toEqual({
        data: { users: DEMO_USERS.map((id) => ({ id, tags: rig.emulator.store.getTags(id) })) },
      });
      expect(rig.emulator.store.getTags('alice')).toContain('vip');

      // The tags came through the gateway from the upstream, in one call.
      const lookups = callsOf(rig.emulator).filter((c) => c.accounts.includes('alice'));
      expect(lookups).toHaveLength(1);
      expect(lookups[0]!.accounts.sort()).toEqual([...DEMO_USERS].sort());

      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'graphiql.png') });
      expect(aborted, 'the page asked for something outside the gateway').toEqual([]);
      expect(errors).toEqual([]);
      await context.close();
    },
  );

  it(
    'pre-fills an Authorization header when the gateway checks JWTs, and runs with a real token put there',
    { timeout: 90_000 },
    async () => {
      const rig = await startRig({
        env: { GRAPHIQL: 'true', GRAPHQL_INTROSPECTION: 'true', AUTH_MODE: 'jwt', JWT_SECRET },
      });
      rigs.push(rig);
      const { context, page, aborted } = await closedPage(browser, rig.url);

      await page.goto(`${rig.url}/graphql`, { timeout: 60_000 });
      await page.getByRole('button', { name: 'Headers', exact: true }).click();
      const headers = page.locator('.graphiql-editor-tool');
      await expect.poll(() => textOf(headers), { timeout: 30_000 }).toContain('"Authorization": "Bearer <your JWT>"');

      // What a user does: replace the placeholder with a token, then run the demo query.
      const token = await new SignJWT({ scope: 'tags:read' })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('alice')
        .setExpirationTime('10m')
        .sign(new TextEncoder().encode(JWT_SECRET));
      await headers.getByText('Authorization').click();
      await page.keyboard.press('Control+A');
      await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${token}` }));
      // The editor closes brackets and quotes it sees opened; drop what it added after the text.
      await page.keyboard.press('Shift+Control+End');
      await page.keyboard.press('Delete');
      await page.locator('.graphiql-execute-button').click();
      await page.getByRole('menuitem', { name: 'DemoUsers', exact: true }).click();

      const result = page.locator('.graphiql-response');
      await expect.poll(() => textOf(result), { timeout: 30_000 }).toMatch(/"frank"[\s\S]*\}\s*$/);
      expect(JSON.parse(await textOf(result))).toEqual({
        data: { users: DEMO_USERS.map((id) => ({ id, tags: rig.emulator.store.getTags(id) })) },
      });
      await page.screenshot({ path: join(ARTIFACTS, 'graphiql-jwt.png') });
      expect(aborted).toEqual([]);
      await context.close();
    },
  );
});

describe('GraphiQL setting and document', () => {
  it('opens on a document whose every operation is valid against the schema', () => {
    for (const jwt of [false, true]) {
      const document = parse(defaultDocument(jwt));
      expect(validate(schema, document)).toEqual([]);
      const operations = document.definitions.flatMap((d) =>
        d.kind === Kind.OPERATION_DEFINITION ? [`${d.operation} ${d.name?.value}`] : [],
      );
      expect(operations).toEqual(['query DemoUsers', 'query OneUser', 'mutation TagAlice', 'mutation UntagAlice']);
    }
  });

  it('carries a commented push to the demo tag vip that, uncommented, is valid', () => {
    expect(defaultDocument(false)).toContain(PUSH_EXAMPLE);
    const uncommented = PUSH_EXAMPLE.split('\n')
      .filter((line) => line.startsWith('#   ') || line.startsWith('# mutation') || line === '# }')
      .map((line) => line.slice(2))
      .join('\n');
    const document = parse(uncommented);
    expect(validate(schema, document)).toEqual([]);
    expect(uncommented).toContain('tagsAll: ["vip"]');
    expect(DEMO_VIPS.length).toBeGreaterThan(0);
  });

  it('serves no GraphiQL page when GRAPHIQL=false', async () => {
    const rig = await startRig({ env: { GRAPHIQL: 'false' } });
    try {
      const res = await fetch(`${rig.url}/graphql`, { headers: { accept: 'text/html' } });
      const body = await res.text();
      expect(res.headers.get('content-type') ?? '').not.toMatch(/text\/html/);
      expect(body).not.toContain('graphiql');
    } finally {
      await rig.close();
    }
  });

  it('serves the page from the gateway alone, with no external script, style or font', async () => {
    const rig = await startRig({ env: { GRAPHIQL: 'true', GRAPHQL_INTROSPECTION: 'true' } });
    try {
      const res = await fetch(`${rig.url}/graphql`, { headers: { accept: 'text/html' } });
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      const html = await res.text();
      expect(html).toContain('query DemoUsers');
      expect(html).not.toMatch(/<(script|link)[^>]+(src|href)="https?:/i);
      expect(html).not.toMatch(/(unpkg\.com|cdn\.jsdelivr\.net|cdnjs\.cloudflare\.com)/);
    } finally {
      await rig.close();
    }
  });
});
