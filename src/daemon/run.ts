/** `thyroid-edge run`: start the daemon and its MQTT side, stop cleanly on SIGTERM/SIGINT (exit 0). */
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { Daemon } from './daemon.js';
import { MqttService } from './mqtt/service.js';

export async function runDaemon(config: Config, logger: Logger): Promise<void> {
  const daemon = new Daemon(config, logger);
  await daemon.start();
  const mqtt = new MqttService(config, daemon, logger);
  await mqtt.start();
  const statsTimer = setInterval(() => logger.info({ stats: daemon.pipelineStats(), mqttConnected: mqtt.connected, outbox: mqtt.outboxSize }, 'pipeline stats'), 30_000);
  statsTimer.unref();
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal: sig }, 'stopping: finishing the frame in flight');
      clearInterval(statsTimer);
      // pipeline first, so the last frame's alerts still reach the outbox; then MQTT
      daemon
        .stop()
        .then(() => mqtt.stop())
        .catch((err: unknown) => logger.error({ err: (err as Error).message }, 'error while stopping'))
        .finally(resolve);
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  logger.info('stopped');
  logger.flush?.();
}
