/** `npm start`: reads the Config, starts the gateway, and stops it cleanly on SIGTERM. */
import pino from 'pino';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';
import { tuneHeap } from './runtime.js';
import { startGateway } from './server.js';

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`tim-tags-graphql: configuration error: ${err.message}`);
      process.exit(1);
    }
    throw err;
  }
}

/** A listen failure is a PORT or HOST that cannot be served: said in the same one line as a bad value. */
function listenProblem(err: NodeJS.ErrnoException, { port, host }: Config): string | null {
  const lookup = err.syscall === 'getaddrinfo' && (err as { hostname?: string }).hostname === host;
  if (lookup || (err.code === 'EADDRNOTAVAIL' && err.syscall === 'listen'))
    return `HOST: ${host} is not an address of this machine (${err.code})`;
  if (err.code === 'EADDRINUSE') return `PORT: ${port} is already in use on ${host}`;
  if (err.code === 'EACCES' && err.syscall === 'listen')
    return `PORT: ${port} on ${host} needs privileges this process lacks`;
  return null;
}

tuneHeap();
/** How long an exit waits for the last log lines: a log reader that went away never takes them. */
const FLUSH_WAIT_MS = 1000;

/** What pino writes to: sonic-boom, whose writes are asynchronous (fields read only when they are there). */
interface LogStream {
  _writing?: boolean;
  _len?: number;
  flushSync?: () => void;
}

/**
 * Exits once the last log lines are written, not while they may still be on their way, nor never: pino
 * writes what is left synchronously as the process exits, and when stdout's reader has gone (EPIPE) that
 * write retries for good. So the exit waits (at most FLUSH_WAIT_MS) until nothing is left to write; what
 * is left after that cannot be written, and is dropped.
 */
function exitAfterFlush(code: number): void {
  const stream = (logger as unknown as Record<symbol, LogStream | undefined>)[pino.symbols.streamSym];
  const pending = () => stream?._writing === true || (stream?._len ?? 0) > 0;
  const giveUpAt = Date.now() + FLUSH_WAIT_MS;
  const exit = () => {
    if (pending() && Date.now() < giveUpAt) {
      setTimeout(exit, 10);
      return;
    }
    if (stream && pending()) stream.flushSync = () => {};
    process.exit(code);
  };
  logger.flush(exit);
}

const config = readConfig();
const logger = createLogger(config.logLevel);
const gateway = await startGateway(config, { logger }).catch((err: NodeJS.ErrnoException) => {
  const problem = listenProblem(err, config);
  if (problem) console.error(`tim-tags-graphql: configuration error: ${problem}`);
  else logger.fatal({ err: err.message }, 'gateway failed to start');
  exitAfterFlush(1);
  return new Promise<never>(() => {});
});

let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping: finishing requests in flight');
    gateway.close().then(
      () => {
        logger.info('stopped');
        exitAfterFlush(0);
      },
      (err: Error) => {
        logger.error({ err: err.message }, 'unclean stop');
        exitAfterFlush(1);
      },
    );
  });
}
