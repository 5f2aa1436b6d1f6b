/** `npm start`: reads the Config, starts the gateway, and stops it cleanly on SIGTERM. */
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';
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

const config = readConfig();
const logger = createLogger(config.logLevel);
const gateway = await startGateway(config, { logger }).catch((err: Error) => {
  logger.fatal({ err: err.message }, 'gateway failed to start');
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
