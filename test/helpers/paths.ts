import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
/** Every gateway started by the tests logs (at debug) into a file here. */
export const LOG_DIR = fileURLToPath(new URL('../artifacts/logs/', import.meta.url));
