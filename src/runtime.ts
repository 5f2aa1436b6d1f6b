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

export function tuneHeap(): void {
  if (process.execArgv.some((flag) => /^--heap[-_]growing[-_]percent\b/.test(flag))) return;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
