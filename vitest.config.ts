import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS (main) and ESM (module) copies. Vite would hand our sources the ESM one while
    // graphql-yoga, loaded by Node, gets the CJS one: two GraphQLError classes, and yoga masks every error of
    // ours as INTERNAL_SERVER_ERROR. Resolve it as Node does, so tests see what production serves.
    alias: [{ find: /^graphql$/, replacement: createRequire(import.meta.url).resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Load tests and multi-process tests measure the upstream's view of time: keep files from competing for 2 cores.
    fileParallelism: false,
    globalSetup: ['test/global-setup.ts'],
  },
});
