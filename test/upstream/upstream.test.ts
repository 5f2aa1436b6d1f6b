/**
 * Issue 4: the upstream layer on its own (lookup queue, attempt loop, writes),
 * over a real TIM client and a real emulator: coalescing, deadlines, the
 * budget per attempt, retries, the circuit, partial failure.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { TimEmulator, type EmulatorOptions } from '../../src/emulator/index.js';
import { TimClient } from '../../src/tim/client.js';
import { TimError } from '../../src/tim/errors.js';
import { AdminSigner } from '../../src/tim/usersig.js';
import { SlidingWindowBudget, type BudgetSlot, type RateBudget } from '../../src/upstream/budget.js';
import { Circuit } from '../../src/upstream/circuit.js';
import { RateLimitedError } from '../../src/upstream/errors.js';
import type { Budgets } from '../../src/upstream/budgets.js';
import type { Lookup } from '../../src/upstream/lookup-queue.js';
import { Upstream } from '../../src/upstream/upstream.js';

type TagResult = Lookup<string[]>;

/** One budget for every command: these tests count one command's calls. */
const sharedBudget = (budget: RateBudget): Budgets => ({
  forCommand: () => budget,
  describe: () => budget.describe(),
  close: async () => {},
});

const SDKAPPID = 1400077777;
const ADMIN = 'administrator';
const tagsOf = (i: number) => [`t${i}`, 'all'];
const SEED = Array.from({ length: 300 }, (_, i) => ({ To_Account: `a${i}`, Tags: tagsOf(i) }));
const ids = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `a${from + i}`);

/** Passes slots through, counting how each was used (the first report of a slot counts, as in the budget). */
class CountingBudget implements RateBudget {
  granted = 0;
  ended = 0;
  unused = 0;
  constructor(
    readonly inner: SlidingWindowBudget,
    /** This process's share, as a fleet's budget reports it; none: the whole limit. */
    readonly share?: number,
  ) {}
  get limit(): number {
    return this.inner.limit;
  }
  async acquireSlot(deadline: number): Promise<BudgetSlot | null> {
    const slot = await this.inner.acquireSlot(deadline);
    if (!slot) return null;
    this.granted++;
    let over = false;
    return {
      ended: () => {
        if (!over) this.ended++;
        over = true;
        slot.ended();
      },
      unused: () => {
        if (!over) this.unused++;
        over = true;
        slot.unused();
      },
    };
  }
  describe(): string {
    return 'counting';
  }
}

interface Setup {
  emulator: TimEmulator;
  upstream: Upstream;
  budget: CountingBudget;
}

const opened: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of opened.splice(0)) await close();
});

async function setup(
  opts: {
    limit?: number;
    circuit?: Circuit;
    timeoutMs?: number;
    emulator?: Partial<EmulatorOptions>;
    coalesce?: boolean;
    signerClock?: () => number;
    /** The budget under the counting one; SlidingWindowBudget.paced(limit) by default. */
    budget?: SlidingWindowBudget;
    /** The share of the budget the counting one reports as this process's (a fleet's budget does). */
    share?: number;
  } = {},
): Promise<Setup> {
  const secretKey = randomBytes(16).toString('hex');
  const emulator = await TimEmulator.start({
    sdkappid: SDKAPPID,
    secretKey,
    adminIdentifier: ADMIN,
    seed: SEED,
    ...opts.emulator,
  });
  const signer = new AdminSigner({ sdkappid: SDKAPPID, identifier: ADMIN, secretKey }, opts.signerClock);
  const client = new TimClient({
    baseUrl: emulator.url,
    sdkappid: SDKAPPID,
    signer,
    timeoutMs: opts.timeoutMs ?? 5000,
  });
  const budget = new CountingBudget(opts.budget ?? SlidingWindowBudget.paced(opts.limit ?? 100), opts.share);
  const upstream = new Upstream({
    client,
    budgets: sharedBudget(budget),
    log: pino({ level: 'silent' }),
    circuit: opts.circuit,
    coalesce: opts.coalesce,
    retry: { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 200 },
  });
  opened.push(async () => {
    await budget.inner.close();
    client.close();
    await emulator.close();
  });
  return { emulator, upstream, budget };
}

const gets = (emulator: TimEmulator) => emulator.calls.filter((c) => c.command === 'im_get_tag');
const codeOf = (r: TagResult) => (r instanceof TimError ? r.code : null);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('coalescing', () => {
  it('sends the lookups of many callers in one turn as one call, and gives each caller only its own', async () => {
    const { emulator, upstream } = await setup();
    const deadline = Date.now() + 5000;
    const results = await Promise.all(ids(30).map((a) => upstream.tags.get([a], deadline)));
    expect(results).toEqual(ids(30).map((_, i) => [tagsOf(i)]));
    expect(gets(emulator)).toHaveLength(1);
    expect(gets(emulator)[0]!.accounts.sort()).toEqual(ids(30).sort());
  });

  it('cuts the queue into calls of at most 100 distinct accounts, each account once', async () => {
    const { emulator, upstream } = await setup();
    const deadline = Date.now() + 5000;
    // Five callers with overlapping ids: 250 distinct accounts in all.
    const asks = [ids(100, 0), ids(100, 50), ids(100, 100), ids(100, 150), ids(50, 200)];
    const results = await Promise.all(asks.map((a) => upstream.tags.get(a, deadline)));
    results.forEach((r, k) => expect(r).toEqual(asks[k]!.map((a) => tagsOf(Number(a.slice(1))))));
    const calls = gets(emulator);
    expect(calls.map((c) => c.accounts.length).sort((x, y) => y - x)).toEqual([100, 100, 50]);
    const sent = calls.flatMap((c) => c.accounts);
    expect(new Set(sent).size).toBe(250);
    expect(sent).toHaveLength(250);
  });

  it('answers an account named twice in one lookup once, and sends it once', async () => {
    const { emulator, upstream } = await setup();
    const deadline = Date.now() + 5000;
    const [queued, read] = await Promise.all([
      upstream.tags.queue.lookup(['a1', 'a2', 'a1'], deadline),
      upstream.tags.get(['a3', 'a3'], deadline),
    ]);
    expect([...queued].sort()).toEqual([
      ['a1', tagsOf(1)],
      ['a2', tagsOf(2)],
    ]);
    expect(read).toEqual([tagsOf(3), tagsOf(3)]);
    expect(gets(emulator).map((c) => c.accounts.sort())).toEqual([['a1', 'a2', 'a3']]);
  });

  it('never adds a lookup to a call already sent: it leaves in the next call', async () => {
    const { emulator, upstream } = await setup({ emulator: { latencyMs: 150 } });
    const deadline = Date.now() + 5000;
    const first = upstream.tags.get(['a1'], deadline);
    await sleep(40); // the first call is on its way
    const second = upstream.tags.get(['a1', 'a2'], deadline);
    expect(await first).toEqual([tagsOf(1)]);
    expect(await second).toEqual([tagsOf(1), tagsOf(2)]);
    const calls = gets(emulator);
    expect(calls.map((c) => c.accounts.sort())).toEqual([['a1'], ['a1', 'a2']]);
  });

  it('starts again after the queue ran dry', async () => {
    const { emulator, upstream } = await setup();
    expect(await upstream.tags.get(['a3'], Date.now() + 2000)).toEqual([tagsOf(3)]);
    await sleep(50);
    expect(await upstream.tags.get(['a4'], Date.now() + 2000)).toEqual([tagsOf(4)]);
    expect(gets(emulator)).toHaveLength(2);
    expect(upstream.queuedAccounts).toBe(0);
  });

  it('without coalescing, sends each caller its own calls, still through the budget', async () => {
    const { emulator, upstream, budget } = await setup({ coalesce: false });
    const deadline = Date.now() + 5000;
    const results = await Promise.all(ids(5).map((a) => upstream.tags.get([a], deadline)));
    expect(results).toEqual(ids(5).map((_, i) => [tagsOf(i)]));
    expect(gets(emulator)).toHaveLength(5);
    expect(budget.granted).toBe(5);
    expect(budget.ended).toBe(5);
  });
});

describe('pacing under load', () => {
  // A budget of 20 calls a second that never paces: any spacing of the calls is the queue's own.
  // The queue paces once it made 18 calls (nine tenths of its budget) in the last second: one per 50 ms.
  const PACE_MS = 1000 / 20;
  async function busy(fleet = false) {
    // In a fleet the queue paces by this process's share: half of a budget of 40 paces as a budget of 20 does.
    const set = await setup(
      fleet ? { budget: new SlidingWindowBudget(40), share: 20 } : { budget: new SlidingWindowBudget(20) },
    );
    const started = Date.now();
    for (let i = 0; i < 18; i++) expect(await set.upstream.tags.get([`a${i}`], Date.now() + 5000)).toEqual([tagsOf(i)]);
    // Until then each lookup left at once: 18 round trips to a local emulator and no pace between them
    // (pacing from half the budget on would have spaced the last eight by 50 ms each).
    expect(Date.now() - started).toBeLessThan(4 * PACE_MS);
    expect(gets(set.emulator)).toHaveLength(18);
    return set;
  }

  it.each([
    ['its budget', false],
    ["its process's share of a fleet's budget", true],
  ])('makes a call that is not full wait one pace after the last, by %s', async (_, fleet) => {
    const { emulator, upstream } = await busy(fleet);
    const deadline = Date.now() + 5000;
    // Three lookups in three turns of the event loop, well inside the pace (slack for a busy machine).
    const first = upstream.tags.get(['a20'], deadline);
    await sleep(5);
    const second = upstream.tags.get(['a21'], deadline);
    await sleep(5);
    const third = upstream.tags.get(['a22', 'a20'], deadline);
    expect(await Promise.all([first, second, third])).toEqual([[tagsOf(20)], [tagsOf(21)], [tagsOf(22), tagsOf(20)]]);
    const calls = gets(emulator);
    expect(calls).toHaveLength(19);
    expect(calls[18]!.accounts.sort()).toEqual(['a20', 'a21', 'a22']);
    expect(calls[18]!.at - calls[17]!.at).toBeGreaterThanOrEqual(PACE_MS - 5);
  });

  it('sends a full call at once, and the rest at the next pace', async () => {
    const { emulator, upstream } = await busy();
    const deadline = Date.now() + 5000;
    const waiting = upstream.tags.get(['a200'], deadline);
    await sleep(5);
    const full = upstream.tags.get(ids(100, 100), deadline);
    const [one, hundred] = await Promise.all([waiting, full]);
    expect(one).toEqual([tagsOf(200)]);
    expect(hundred).toEqual(ids(100, 100).map((a) => tagsOf(Number(a.slice(1)))));
    const calls = gets(emulator);
    const [fullCall, rest] = calls.slice(18);
    // The head waited for a fuller call; once the queue held 100 accounts, it left with them, before its pace.
    expect(fullCall!.accounts).toHaveLength(100);
    expect(fullCall!.accounts).toContain('a200');
    expect(fullCall!.at - calls[17]!.at).toBeLessThan(PACE_MS - 5);
    expect(rest!.accounts).toEqual(['a199']);
    expect(rest!.at - fullCall!.at).toBeGreaterThanOrEqual(PACE_MS - 5);
    expect(gets(emulator)).toHaveLength(20);
  });
});

describe('deadlines', () => {
  it('fails at once, with no call, a lookup whose queue cannot leave before its deadline', async () => {
    const { emulator, upstream } = await setup({ limit: 1 });
    const started = Date.now();
    // 300 accounts are three calls: at one call a second, two seconds; the deadline is half of one.
    const results = await upstream.tags.get(ids(300), started + 500);
    expect(Date.now() - started).toBeLessThan(100);
    expect(results.every((r) => r instanceof RateLimitedError)).toBe(true);
    expect(gets(emulator)).toHaveLength(0);
    expect(upstream.queuedAccounts).toBe(0);
  });

  it('fails a lookup whose deadline has passed without a call', async () => {
    const { emulator, upstream } = await setup();
    const results = await upstream.tags.get(['a1'], Date.now() - 1);
    expect(results[0]).toBeInstanceOf(RateLimitedError);
    expect(gets(emulator)).toHaveLength(0);
  });

  it('fails fast the queued lookups due before the next slot, and keeps the others in line', async () => {
    const { emulator, upstream } = await setup({ limit: 1 });
    expect(await upstream.tags.get(['a1'], Date.now() + 5000)).toEqual([tagsOf(1)]); // the one slot of this second
    const started = Date.now();
    const hurried = upstream.tags.get(['a2'], started + 300).then((r) => ({ r, ms: Date.now() - started }));
    const patient = upstream.tags.get(['a3'], started + 4000).then((r) => ({ r, ms: Date.now() - started }));
    const h = await hurried;
    expect(h.r[0]).toBeInstanceOf(RateLimitedError);
    expect(h.ms).toBeLessThan(300);
    const p = await patient;
    expect(p.r).toEqual([tagsOf(3)]);
    expect(p.ms).toBeGreaterThan(600); // it waited for the window to pass
    expect(gets(emulator).map((c) => c.accounts)).toEqual([['a1'], ['a3']]);
    expect(upstream.queuedAccounts).toBe(0);
  });

  it('answers by the deadline however long the upstream hangs, and frees every slot', async () => {
    const { emulator, upstream, budget } = await setup({ timeoutMs: 10_000 });
    emulator.injectFault({ hangMs: 3000 }, { count: 5 });
    const started = Date.now();
    const [result] = await upstream.tags.get(['a1'], started + 600);
    const took = Date.now() - started;
    expect(result).toBeInstanceOf(TimError);
    expect((result as TimError).kind).toBe('unavailable');
    expect(took).toBeGreaterThanOrEqual(550);
    expect(took).toBeLessThan(1000);
    expect(gets(emulator).length).toBeGreaterThanOrEqual(1);
    await sleep(100);
    expect(budget.granted).toBe(budget.ended + budget.unused);
  });
});

describe('retries', () => {
  it('takes a budget slot for every attempt, and reports each one ended', async () => {
    const { emulator, upstream, budget } = await setup();
    emulator.injectFault({ errorCode: 91000 }, { count: 2 });
    expect(await upstream.tags.get(['a5'], Date.now() + 5000)).toEqual([tagsOf(5)]);
    expect(gets(emulator).map((c) => c.errorCode)).toEqual([91000, 91000, 0]);
    expect(budget.granted).toBe(3);
    expect(budget.ended).toBe(3);
    expect(budget.inner.held()).toBe(3);
  });

  it('signs a new UserSig after 70001 and tries once more', async () => {
    let now = Date.now();
    const { emulator, upstream } = await setup({ signerClock: () => now });
    expect(await upstream.tags.get(['a1'], Date.now() + 5000)).toEqual([tagsOf(1)]);
    now += 5000; // a later signing time makes a different sig
    emulator.injectFault({ errorCode: 70001 }, { count: 1 });
    expect(await upstream.tags.get(['a2'], Date.now() + 5000)).toEqual([tagsOf(2)]);
    const [first, expired, retried] = gets(emulator);
    expect(expired!.errorCode).toBe(70001);
    expect(expired!.query.usersig).toBe(first!.query.usersig);
    expect(retried!.query.usersig).not.toBe(expired!.query.usersig);
    expect(retried!.errorCode).toBe(0);
  });

  it('gives up on 70001 after one new UserSig', async () => {
    const { emulator, upstream } = await setup();
    emulator.injectFault({ errorCode: 70001 }, { count: 5 });
    const [result] = await upstream.tags.get(['a1'], Date.now() + 5000);
    expect(codeOf(result!)).toBe(70001);
    expect(gets(emulator)).toHaveLength(2);
  });

  it('retries writes too', async () => {
    const { emulator, upstream } = await setup();
    emulator.injectFault({ httpStatus: 503, command: 'im_add_tag' }, { count: 1 });
    const outcomes = await upstream.writes.send(
      'im_add_tag',
      [{ UserTags: [{ To_Account: 'a1', Tags: ['new'] }] }],
      Date.now() + 5000,
    );
    expect(outcomes).toEqual([{ accounts: ['a1'], accountErrors: new Map() }]);
    expect(emulator.calls.filter((c) => c.command === 'im_add_tag').map((c) => c.httpStatus)).toEqual([503, 200]);
    expect(emulator.store.getTags('a1')).toContain('new');
  });
});

describe('partial failure', () => {
  it('fails only the accounts of the call that failed', async () => {
    const { emulator, upstream } = await setup();
    emulator.injectFault({ errorCode: 90009, command: 'im_get_tag' }, { skip: 1, count: 1 });
    const results = await upstream.tags.get(ids(250), Date.now() + 5000);
    const calls = gets(emulator);
    expect(calls).toHaveLength(3);
    const failedCall = calls.find((c) => c.errorCode !== 0)!;
    const failed = new Set(failedCall.accounts);
    expect(calls.filter((c) => c.errorCode !== 0)).toHaveLength(1);
    ids(250).forEach((a, i) => {
      if (failed.has(a)) expect(codeOf(results[i]!)).toBe(90009);
      else expect(results[i]).toEqual(tagsOf(i));
    });
  });
});

describe('unreadable answers', () => {
  /** A real HTTP upstream that answers every call with `body`: what the emulator cannot be made to say. */
  async function upstreamAnswering(body: unknown): Promise<{ url: string; close(): Promise<void> }> {
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
  }

  async function writeAnswered(errorList: unknown) {
    const upstream = await upstreamAnswering({ ActionStatus: 'OK', ErrorCode: 0, ErrorInfo: '', ErrorList: errorList });
    const signer = new AdminSigner({ sdkappid: SDKAPPID, identifier: ADMIN, secretKey: 'k' });
    const client = new TimClient({ baseUrl: upstream.url, sdkappid: SDKAPPID, signer, timeoutMs: 2000 });
    const budget = SlidingWindowBudget.paced(100);
    opened.push(async () => {
      await budget.close();
      client.close();
      await upstream.close();
    });
    const gateway = new Upstream({ client, budgets: sharedBudget(budget), log: pino({ level: 'silent' }) });
    const [outcome] = await gateway.writes.send(
      'im_add_tag',
      [{ UserTags: [{ To_Account: 'a1', Tags: ['x'] }] }],
      Date.now() + 3000,
    );
    return outcome!;
  }

  it.each([{ list: {} }, { list: 'a1' }])(
    'fails a write whose ErrorList is $list as unavailable, not with a TypeError',
    async ({ list }) => {
      const outcome = await writeAnswered(list);
      expect(outcome.error).toBeInstanceOf(TimError);
      expect((outcome.error as TimError).kind).toBe('unavailable');
      expect(outcome.accountErrors.size).toBe(0);
    },
  );

  it('skips ErrorList entries of a write that name no account', async () => {
    const outcome = await writeAnswered([null, { ErrorCode: 70107 }, { To_Account: 'a1', ErrorCode: 70107 }]);
    expect(outcome.error).toBeUndefined();
    expect([...outcome.accountErrors.keys()]).toEqual(['a1']);
    expect(codeOf(outcome.accountErrors.get('a1')!)).toBe(70107);
  });
});

describe('circuit', () => {
  it('opens after repeated failures, fails fast without calling, and closes after a good probe', async () => {
    const circuit = new Circuit({ threshold: 3, cooldownMs: 400 });
    const { emulator, upstream, budget } = await setup({ circuit });
    emulator.injectFault({ httpStatus: 502 }, { count: Infinity });
    const [first] = await upstream.tags.get(['a1'], Date.now() + 5000);
    expect((first as TimError).kind).toBe('unavailable');
    expect(gets(emulator)).toHaveLength(3); // the fourth attempt found the circuit open
    expect(circuit.state).toBe('open');
    expect(upstream.ready).toBe(false);

    const started = Date.now();
    const [fast] = await upstream.tags.get(['a2'], Date.now() + 5000);
    expect((fast as TimError).message).toMatch(/paused/);
    expect(Date.now() - started).toBeLessThan(50);
    expect(gets(emulator)).toHaveLength(3);

    emulator.clearFaults();
    await sleep(450);
    expect(upstream.ready).toBe(true);
    expect(await upstream.tags.get(['a3'], Date.now() + 5000)).toEqual([tagsOf(3)]);
    expect(circuit.state).toBe('closed');
    expect(budget.granted).toBe(budget.ended + budget.unused);
  });

  it('is not opened by refusals that show the upstream works', async () => {
    const circuit = new Circuit({ threshold: 2, cooldownMs: 10_000 });
    const { emulator, upstream } = await setup({ circuit });
    emulator.injectFault({ errorCode: 90009 }, { count: 5 });
    for (const a of ids(5)) expect(codeOf((await upstream.tags.get([a], Date.now() + 5000))[0]!)).toBe(90009);
    expect(circuit.state).toBe('closed');
  });
});
