/**
 * Ends a run with one plain line, `Tests: N passed, N failed[, N skipped]`, that any CI reads
 * without knowing vitest's own summary format. A file that failed outside its tests (a failing
 * `beforeAll`, an import that throws) leaves its tests skipped, not failed: it is named on the line too.
 */
import type { Reporter, TestModule } from 'vitest/node';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0, pending: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) counts[test.result().state] += 1;
    }
    const broken = testModules.filter(
      (module) =>
        module.state() === 'failed' &&
        ![...module.children.allTests()].some((test) => test.result().state === 'failed'),
    );
    const skipped = counts.skipped + counts.pending;
    const files = broken.length
      ? `; ${broken.length} file${broken.length > 1 ? 's' : ''} failed outside ${broken.length > 1 ? 'their' : 'its'} tests: ${broken.map((m) => m.relativeModuleId).join(', ')}`
      : '';
    console.log(
      `\nTests: ${counts.passed} passed, ${counts.failed} failed${skipped ? `, ${skipped} skipped` : ''}${files}`,
    );
  }
}
