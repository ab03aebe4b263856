/** `thyroid-edge run`: start the daemon, stop cleanly on SIGTERM/SIGINT (exit 0). */
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { Daemon } from './daemon.js';

export async function runDaemon(config: Config, logger: Logger): Promise<void> {
  const daemon = new Daemon(config, logger);
  await daemon.start();
  const statusTimer = setInterval(() => logger.info({ status: daemon.status().pipeline }, 'pipeline stats'), 30_000);
  statusTimer.unref();
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal: sig }, 'stopping: finishing the frame in flight');
      clearInterval(statusTimer);
      daemon
        .stop()
        .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'error while stopping'))
        .finally(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  logger.info('stopped');
  logger.flush?.();
}
