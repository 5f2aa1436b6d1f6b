import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Files run in vitest's order, except the scan of everything the suite logged, which runs after all of them. */
class LogScanLast extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const isScan = (f: TestSpecification) => f.moduleId.endsWith('/zz-logs-no-secrets.test.ts');
    return [...sorted.filter((f) => !isScan(f)), ...sorted.filter(isScan)];
  }
}

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
    sequence: { sequencer: LogScanLast },
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
