/** Collects every line the gateways log during the suite into one file, for the no-secrets-in-logs check. */
import { mkdirSync, rmSync } from 'node:fs';
import { LOG_DIR } from './helpers/paths.js';

export default function setup(): void {
  rmSync(LOG_DIR, { recursive: true, force: true });
  mkdirSync(LOG_DIR, { recursive: true });
}
