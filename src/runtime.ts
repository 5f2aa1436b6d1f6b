/**
 * How a gateway process sets up its JavaScript heap (the entry points call it: `npm start`, and
 * the bench's gateway processes, which must run as production does).
 *
 * V8 grows the old generation to up to four times what survived its last full collection when
 * collections are cheap, as they are here: a gateway's live heap is some 50 MB, but under load it
 * kept about 300 MB of garbage mapped before collecting it. Growing it by half that factor (twice
 * the survivors) keeps the process near 300 MB instead of 400 MB under the bench load, for about
 * 2% more CPU in full collections. A `--heap-growing-percent` given on node's command line wins
 * (NODE_OPTIONS does not take it).
 */
import { setFlagsFromString } from 'node:v8';

/** The old generation may grow to twice what survived the last full collection. */
export const HEAP_GROWING_PERCENT = 100;

/**
 * Node flags the gateway's scripts start it with (`npm start`, `npm run start:prod`, and the bench's
 * gateway processes; a test holds package.json to them). V8 sizes the young generation only as the
 * process starts, so this cannot be set from tuneHeap. Under load V8 grew each semi-space to 64 MB,
 * and the young generation's pages were a sixth of the gateway's RSS. At 32 MB the gateway kept 40-70
 * MB less (peak RSS 367 and 373 MB against 437 and 411, single users with no upstream limit, in-process)
 * for twice as many scavenges, each about half as long: minor GC 27.8 and 29.1 µs per request against
 * 25.9 and 24.0.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];

export function tuneHeap(): void {
  if (process.execArgv.some((flag) => /^--heap[-_]growing[-_]percent\b/.test(flag))) return;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
