/**
 * Everything `thyroid-edge run` starts, in order, and stops in reverse: update recovery (which
 * model and config to run), the daemon, MQTT, the live view, the update schedule. Tests start the same thing.
 */
import type { Logger } from 'pino';
import { AlertService } from '../alerts/service.js';
import { LiveViewServer } from '../live/server.js';
import { UpdateScheduler } from '../updates/scheduler.js';
import { Updater, type UpdateHost } from '../updates/updater.js';
import type { Config } from '../config/schema.js';
import { Daemon } from './daemon.js';
import { MqttService } from '../mqtt/service.js';
import { checkConfiguredIdentity } from '../mqtt/identity.js';

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
  let alerts: AlertService | null = null;
  // a validated runtime config (set_config, config bundles) reaches every part that reads one
  const applyConfig = async (c: Config): Promise<void> => {
    mqtt.setConfig(c);
    alerts?.applyConfig(c);
    logger.level = c.logLevel;
    await daemon.applyConfig(c);
  };
  const mqtt = new MqttService(config, daemon, logger, {
    applyConfig,
    restartPipeline: () => daemon.restartPipeline(),
    update: async (url, transaction) => {
      updater.checkRequest(url); // answered at once, before anything is fetched
      if (updater.busy) throw new Error('an update is already in progress');
      // the install runs on; its steps go to the update topic, not into this reply
      void updater.install(url, transaction).catch((err: unknown) => logger.error({ err }, 'update failed to start'));
      return { accepted: true, url };
    },
  });
  await mqtt.start();
  const offProgress = updater.onProgress((p) => mqtt.storeUpdate(p));
  // alerts: decided on results, stored through the outbox (MQTT delivers), heard by the live view
  alerts = await AlertService.open(config, { store: (a) => mqtt.storeAlert(a) }, logger);
  alerts.attach(daemon);
  const alertService = alerts;
  const host: UpdateHost = {
    config: () => daemon.currentConfig,
    swapModel: (loc, card) => daemon.swapModel(loc, card),
    commitModel: () => daemon.commitModel(),
    revertModel: (fallback) => daemon.revertModel(fallback),
    // like set_config, so the alert tracker and log level follow a config bundle too
    applyConfig,
    onResult: (l) => daemon.onResult(l),
    frameErrors: () => daemon.frameErrors(),
    inferenceP50: () => daemon.inferenceP50(),
    lastNoduleAt: () => daemon.lastNoduleAt(),
  };
  let live: LiveViewServer | null = config.liveView.enabled
    ? new LiveViewServer(
        config.liveView,
        { daemon, onAlert: (l) => alertService.onAlert(l), mqttConnected: () => mqtt.connected },
        logger,
      )
    : null;
  try {
    await live?.start();
  } catch (err) {
    // the page is a convenience: segmentation and MQTT keep running without it
    logger.error(
      { err, host: config.liveView.host, port: config.liveView.port },
      'live view could not start; running without it',
    );
    await live?.stop().catch(() => undefined);
    live = null;
  }
  updater.attach(host, bundles);
  const scheduler = new UpdateScheduler(config.updates, updater, logger);
  scheduler.start();
  return {
    daemon,
    mqtt,
    alerts: alertService,
    updater,
    live,
    stop: async () => {
      scheduler.stop();
      await live?.stop();
      await updater.stop();
      // pipeline first, so the last frame's alerts still reach the outbox; then MQTT
      await daemon.stop();
      await alertService.stop(); // open tracks cleared (reason shutdown) and on disk before MQTT stops
      offProgress();
      await mqtt.stop();
    },
  };
}
