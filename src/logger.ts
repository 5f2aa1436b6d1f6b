/** The gateway's pino logger: JSON lines, pretty in a terminal, secrets redacted. */
import pino, { type DestinationStream, type Logger } from 'pino';

/** Paths that may carry a credential; their values never reach the log. */
export const REDACTED_PATHS = [
  'authorization',
  '*.authorization',
  'req.headers.authorization',
  'usersig',
  '*.usersig',
  'secretKey',
  '*.secretKey',
  // A whole Config logged by mistake: config.tim.secretKey, config.auth.jwtSecret.
  '*.*.secretKey',
  'jwtSecret',
  '*.jwtSecret',
  '*.*.jwtSecret',
  'TIM_SECRET_KEY',
  '*.TIM_SECRET_KEY',
  'JWT_SECRET',
  '*.JWT_SECRET',
];

export interface LoggerOptions {
  /** Human-readable lines; by default when stdout is a terminal. */
  pretty?: boolean;
  /** Where JSON lines go instead of stdout (tests collect them). */
  destination?: DestinationStream;
}

export function createLogger(level: string, opts: LoggerOptions = {}): Logger {
  const pretty = opts.pretty ?? (process.stdout.isTTY === true && !opts.destination);
  const options = {
    level,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    base: { service: 'tim-tags-graphql' },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } }
      : {}),
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}
