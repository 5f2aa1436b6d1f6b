/**
 * `npm run emulator`: a standalone TIM emulator for local development, benchmarks and
 * black-box checks. The only module of the emulator that reads the environment.
 */
import { TimEmulator } from './emulator.js';

/** Public on purpose: anyone may sign for the demo app, which only ever runs on this emulator. */
const DEMO_SECRET_KEY = 'tim-emulator-demo-secret-key';

function intFromEnv(name: string, fallback: number, min: number, max: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** Ends the process with one line that says what is wrong, not a stack. */
function fail(err: unknown): never {
  console.error(`tim emulator: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

let options: Parameters<typeof TimEmulator.start>[0] & { latencyMs: number };
try {
  options = {
    host: process.env.EMULATOR_HOST || '127.0.0.1',
    port: intFromEnv('EMULATOR_PORT', 4100, 0, 65535),
    sdkappid: intFromEnv('TIM_SDKAPPID', 1400000000, 1, Number.MAX_SAFE_INTEGER),
    secretKey: process.env.TIM_SECRET_KEY || DEMO_SECRET_KEY,
    adminIdentifier: process.env.TIM_ADMIN_IDENTIFIER || 'administrator',
    latencyMs: intFromEnv('EMULATOR_LATENCY_MS', 0, 0, 60_000),
  };
} catch (err) {
  fail(err);
}
const emulator = await TimEmulator.start(options).catch(fail);

const key = options.secretKey === DEMO_SECRET_KEY ? 'demo key' : 'key from TIM_SECRET_KEY';
console.log(
  `TIM emulator listening on ${emulator.url} for sdkappid ${options.sdkappid}, admin ${options.adminIdentifier}, ` +
    `${key}, latency ${options.latencyMs} ms`,
);

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    emulator.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error('TIM emulator did not close cleanly:', err);
        process.exit(1);
      },
    );
  });
}
