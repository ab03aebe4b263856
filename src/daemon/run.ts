/** `thyroid-edge run`: start the services, stop cleanly on SIGTERM/SIGINT (exit 0). */
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { startServices } from './services.js';

export async function runDaemon(config: Config, logger: Logger): Promise<void> {
  const svc = await startServices(config, logger);
  const statsTimer = setInterval(() => logger.info({ stats: svc.daemon.pipelineStats(), mqttConnected: svc.mqtt.connected, outbox: svc.mqtt.outboxSize }, 'pipeline stats'), 30_000);
  statsTimer.unref();
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal: sig }, 'stopping: finishing the frame in flight');
      clearInterval(statsTimer);
      svc
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
