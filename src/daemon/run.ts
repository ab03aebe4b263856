/**
 * `thyroid-edge run`: start the services and tell systemd (when under it) READY after the first
 * processed frame, WATCHDOG while frames progress, STOPPING on SIGTERM/SIGINT; exit 0.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { startServices } from './services.js';
import { SystemdNotifier } from './systemd-notify.js';
import { FrameWatchdog } from './watchdog.js';

export async function runDaemon(config: Config, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const notifier = new SystemdNotifier(env, logger);
  // Signals are caught from the start: a SIGTERM that lands while the model loads or the first frames
  // flow must still stop the daemon cleanly (exit 0), not kill it with the default action.
  let requested: string | null = null;
  let onSignal: (sig: string) => void = (sig) => {
    requested ??= sig;
  };
  const handler = (sig: string) => () => onSignal(sig);
  process.once('SIGTERM', handler('SIGTERM'));
  process.once('SIGINT', handler('SIGINT'));
  await notifier.notify('STATUS=loading the model');
  const svc = await startServices(config, logger);
  const { daemon } = svc;
  const watchdog = new FrameWatchdog(
    notifier,
    {
      frames: () => {
        const s = daemon.pipelineCounters();
        return s ? s.processed + s.errors : null;
      },
      captureState: () => daemon.status().capture?.state ?? null,
    },
    logger,
  );
  const status = daemon.status();
  await notifier.notify(
    `STATUS=model loaded; waiting for the first frame from ${status.capture?.source ?? 'the source'}`,
  );
  const offFirst = daemon.onResult(() => {
    offFirst();
    const s = daemon.status();
    void notifier.notify(
      'READY=1',
      `STATUS=serving: model ${s.model?.name ?? '?'} on ${s.model?.provider ?? '?'}, source ` +
        `${s.capture?.source ?? '?'}`,
    );
    logger.info('first frame processed: ready');
    watchdog.start();
  });
  const statsTimer = setInterval(
    () =>
      logger.info(
        { stats: daemon.pipelineStats(), mqttConnected: svc.mqtt.connected, outbox: svc.mqtt.outboxSize },
        'pipeline stats',
      ),
    30_000,
  );
  statsTimer.unref();
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal: sig }, 'stopping: finishing the frame in flight');
      clearInterval(statsTimer);
      offFirst();
      watchdog.stop();
      void notifier.notify('STOPPING=1', 'STATUS=stopping');
      svc
        .stop()
        .catch((err: unknown) => logger.error({ err }, 'error while stopping'))
        .finally(resolve);
    };
    onSignal = stop;
    if (requested) stop(requested);
  });
  await notifier.settled(); // let queued notifications (STOPPING) leave before exit
  logger.info('stopped');
  logger.flush?.();
}
