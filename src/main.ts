/** `npm start`: reads the Config, starts the gateway, and stops it cleanly on SIGTERM. */
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
const config = readConfig();
const logger = createLogger(config.logLevel);
const gateway = await startGateway(config, { logger }).catch((err: NodeJS.ErrnoException) => {
  const problem = listenProblem(err, config);
  if (problem) console.error(`tim-tags-graphql: configuration error: ${problem}`);
  else logger.fatal({ err: err.message }, 'gateway failed to start');
  logger.flush(() => process.exit(1));
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
        // Exit once the log lines are written, not while they may still sit in a buffer.
        logger.flush(() => process.exit(0));
      },
      (err: Error) => {
        logger.error({ err: err.message }, 'unclean stop');
        logger.flush(() => process.exit(1));
      },
    );
  });
}
