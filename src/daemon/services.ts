/**
 * Everything `thyroid-edge run` starts, in order, and stops in reverse: update recovery (which
 * model and config to run), the daemon, MQTT, the live view, the update schedule. Tests start the same thing.
 */
import type { Logger } from 'pino';
import { AlertService } from '../alerts/service.js';
import { LiveViewServer } from '../live/server.js';
import { UpdateScheduler } from '../updates/scheduler.js';
import { Updater, type UpdateHost } from '../updates/updater.js';
import type { Config } from './config/schema.js';
import { Daemon } from './daemon.js';
import { MqttService } from './mqtt/service.js';
import { checkConfiguredIdentity } from './mqtt/identity.js';

export interface Services {
  daemon: Daemon;
  mqtt: MqttService;
  alerts: AlertService;
  updater: Updater;
  live: LiveViewServer | null;
  stop(): Promise<void>;
}

export async function startServices(fileConfig: Config, logger: Logger): Promise<Services> {
  // refused before anything starts: a box must not pose as another on the broker
  await checkConfiguredIdentity(fileConfig.mqtt, fileConfig.deviceId);
  const updater = new Updater(fileConfig, logger);
  const bundles = await updater.recover();
  const config = bundles.config.config;
  const daemon = new Daemon(config, logger, bundles.model);
  await daemon.start();
  const mqtt = new MqttService(config, daemon, logger, updater);
  await mqtt.start();
  // alerts: decided on results, stored through the outbox (MQTT delivers), heard by the live view
  const alerts = await AlertService.open(config, { store: (a) => mqtt.storeAlert(a) }, logger);
  mqtt.attachAlerts(alerts);
  alerts.attach(daemon);
  const host: UpdateHost = {
    config: () => daemon.currentConfig,
    swapModel: (loc, card) => daemon.swapModel(loc, card),
    commitModel: () => daemon.commitModel(),
    revertModel: (fallback) => daemon.revertModel(fallback),
    // through MQTT so the alert tracker and log level follow a config bundle too
    applyConfig: (c) => mqtt.applyConfig(c),
    onResult: (l) => daemon.onResult(l),
    frameErrors: () => daemon.frameErrors(),
    inferenceP50: () => daemon.inferenceP50(),
    lastNoduleAt: () => daemon.lastNoduleAt(),
  };
  let live: LiveViewServer | null = config.liveView.enabled
    ? new LiveViewServer(config.liveView, { daemon, onAlert: (l) => alerts.onAlert(l), mqttConnected: () => mqtt.connected }, logger)
    : null;
  try {
    await live?.start();
  } catch (err) {
    // the page is a convenience: segmentation and MQTT keep running without it
    logger.error({ err: (err as Error).message, host: config.liveView.host, port: config.liveView.port }, 'live view could not start; running without it');
    await live?.stop().catch(() => undefined);
    live = null;
  }
  updater.attach(host, bundles);
  const scheduler = new UpdateScheduler(config.updates, updater, logger);
  scheduler.start();
  return {
    daemon,
    mqtt,
    alerts,
    updater,
    live,
    stop: async () => {
      scheduler.stop();
      await live?.stop();
      await updater.stop();
      // pipeline first, so the last frame's alerts still reach the outbox; then MQTT
      await daemon.stop();
      await alerts.stop(); // open tracks cleared (reason shutdown) and on disk before MQTT stops
      await mqtt.stop();
    },
  };
}
