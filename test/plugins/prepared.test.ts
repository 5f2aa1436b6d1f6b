/**
 * A prepared query (src/prepared.ts) answers as yoga's pipeline does, errors included: a resolver's
 * unexpected error is masked as yoga masks it, a coded one passes, variables that do not coerce get
 * BAD_USER_INPUT. The gateway's own parity test (test/integration/fast-path.test.ts) cannot make a
 * resolver throw an error that is not ours; this yoga, with a schema of its own, can.
 */
import { GraphQLError } from 'graphql';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { createSchema, createYoga, processRegularResult, type Plugin } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { useInputErrorCodes } from '../../src/plugins/error-codes.js';
import {
  MAX_PREPARED_TEXT,
  PreparedQueries,
  PreparedRunner,
  type Masking,
  type RequestContext,
} from '../../src/prepared.js';

const schema = createSchema({
  typeDefs: 'type Query { hello(n: Int!): String, secret: String, coded: String }',
  resolvers: {
    Query: {
      hello: (_: unknown, { n }: { n: number }) => `hi ${n}`,
      secret: () => {
        throw new Error('the database password is hunter2');
      },
      coded: () => {
        throw new GraphQLError('not this one', { extensions: { code: 'BAD_USER_INPUT' } });
      },
    },
  },
});

function rig() {
  const queries = new PreparedQueries();
  const logged: unknown[] = [];
  const yoga = createYoga({
    schema,
    // The gateway's execute hooks that change a result, in its order.
    plugins: [useInputErrorCodes(), useGraphQlJit({}, { cache: queries.compiled }) as Plugin, queries.plugin],
    maskedErrors: { isDev: false },
    logging: { debug: () => {}, info: () => {}, warn: () => {}, error: (...args) => logged.push(args) },
  });
  const observed: Array<{ errors: number; seconds: number }> = [];
  const nothing = () => {};
  const runner = new PreparedRunner({
    queries,
    schema,
    auth: { denial: () => null } as never,
    listBounds: { refusal: () => null } as never,
    observer: { parsed: nothing, executing: nothing } as never,
    tracing: { executing: nothing } as never,
    yogaMetrics: {
      observeExecuted: (_type: string, result: { errors?: unknown[] }, seconds: number) =>
        observed.push({ errors: result.errors?.length ?? 0, seconds }),
    } as never,
    deadlineMs: 10_000,
    contextOf: () => ({}),
    masking: yoga['maskedErrorsOpts'] as Masking | null,
  });
  const viaYoga = async (query: string, variables?: Record<string, unknown>) => {
    const response = await yoga.fetch('http://localhost/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
    return JSON.parse(await response.text()) as unknown;
  };
  const prepared = async (query: string, variables?: Record<string, unknown>) => {
    const params = { query, variables };
    const kept = runner.find(params);
    if (!kept) return undefined;
    const context = { request: new Request('http://localhost/graphql'), params, res: {} } as unknown as RequestContext;
    // Answered as the fast path answers it: yoga's own result processing.
    const result = await runner.run(kept, context);
    return JSON.parse(await processRegularResult(result!, yoga.fetchAPI, 'application/json').text()) as unknown;
  };
  return { viaYoga, prepared, observed, logged, runner };
}

describe('a prepared query', () => {
  it('is kept once it ran, and answers what the pipeline answers', async () => {
    const { viaYoga, prepared, observed } = rig();
    const query = 'query H($n: Int!) { hello(n: $n) }';
    expect(await prepared(query, { n: 1 })).toBeUndefined();
    expect(await viaYoga(query, { n: 1 })).toEqual({ data: { hello: 'hi 1' } });
    expect(await prepared(query, { n: 2 })).toEqual(await viaYoga(query, { n: 2 }));
    expect(observed).toEqual([{ errors: 0, seconds: expect.any(Number) }]);
  });

  it("masks a resolver's unexpected error as yoga does, and logs it", async () => {
    const { viaYoga, prepared, logged } = rig();
    const query = '{ hello(n: 1) secret coded }';
    const first = await viaYoga(query);
    expect(JSON.stringify(first)).not.toContain('hunter2');
    expect(JSON.stringify(first)).toContain('Unexpected error.');
    const loggedBefore = logged.length;
    const answer = await prepared(query);
    expect(answer).toEqual(first);
    expect(logged.length).toBe(loggedBefore + 1);
  });

  it('gives variables that do not coerce their BAD_USER_INPUT', async () => {
    const { viaYoga, prepared } = rig();
    const query = 'query H($n: Int!) { hello(n: $n) }';
    await viaYoga(query, { n: 1 });
    const answer = await prepared(query, { n: 'one' });
    expect(JSON.stringify(answer)).toContain('"code":"BAD_USER_INPUT"');
    expect(answer).toEqual(await viaYoga(query, { n: 'one' }));
  });

  it('keeps no document of two operations', async () => {
    const { viaYoga, prepared } = rig();
    const two = 'query A { hello(n: 1) } query B { hello(n: 2) }';
    await viaYoga(two);
    expect(await prepared(two)).toBeUndefined();
  });

  it('keeps no text longer than MAX_PREPARED_TEXT, and still answers it through the pipeline', async () => {
    const { viaYoga, prepared } = rig();
    const padded = (length: number) => {
      const query = 'query H($n: Int!) { hello(n: $n) }';
      return `${query}${' '.repeat(length - query.length)}`;
    };
    const longest = padded(MAX_PREPARED_TEXT);
    await viaYoga(longest, { n: 1 });
    expect(await prepared(longest, { n: 2 })).toEqual({ data: { hello: 'hi 2' } });
    const tooLong = padded(MAX_PREPARED_TEXT + 1);
    expect(await viaYoga(tooLong, { n: 1 })).toEqual({ data: { hello: 'hi 1' } });
    expect(await prepared(tooLong, { n: 2 })).toBeUndefined();
  });
});
