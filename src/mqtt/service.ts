/**
 * The MQTT side of the daemon: the connection (birth on every connect, reconnect with backoff, an
 * embedded broker when none is configured), what it publishes (status, telemetry, results and masks,
 * best effort) and what it stores in the on-disk outbox (alerts, update progress; command replies
 * through the command queue). How to connect is client-options.ts; commands are command-queue.ts.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { FrameResult } from '../inference/frame-processor.js';
import { encodePng, encodeRle } from '../inference/mask-encoding.js';
import type { Config } from '../config/schema.js';
import { clientOptions, pinPlainToLoopback } from './client-options.js';
import { CommandQueue } from './command-queue.js';
import { CommandRouter, type CommandHandlers } from './commands.js';
import type { MqttHost } from './host.js';
import { EmbeddedBroker } from './embedded-broker.js';
import { deliverOutbox } from './delivery.js';
import { Outbox } from './outbox.js';
import type { AlertPayload, ResultPayload, StatusPayload, TelemetryPayload, UpdatePayload } from './payloads.js';
import { outboxMessage, publishTo } from './publisher.js';
import { TOPIC_TABLE } from './topic-table.js';
import { readSystem } from '../system/readings.js';
import { Topics } from './topics.js';
import type { SnapshotResult } from './command-table.js';

/** how long a clean stop waits for the outbox to empty while connected (what is left stays on disk) */
const STOP_DRAIN_MS = 2000;

/** An update step as the updater reports it; the service adds messageId, deviceId and time. */
export type UpdateProgressFields = Omit<UpdatePayload, 'messageId' | 'deviceId' | 'time'>;

export class MqttService {
  private client: MqttClient | null = null;
  private broker: EmbeddedBroker | null = null;
  private outbox!: Outbox;
  private readonly topics: Topics;
  private readonly commands: CommandQueue;
  private running = false;
  private delivery: Promise<void> | null = null;
  private timers: NodeJS.Timeout[] = [];
  private lastStatusKey = '';
  private lastMaskAt = 0;
  /** a telemetry tick still reading the system (bounded by the interval): the next one is skipped */
  private telemetryBusy = false;
  private backoffMs: number;
  resultsDroppedOffline = 0;
  private offResult: (() => void) | null = null;
  readonly since = new Date().toISOString();
  url = '';

  constructor(
    private config: Config,
    private readonly host: MqttHost,
    private readonly logger: Logger,
    /** what commands change beyond this service (the daemon's wiring supplies them) */
    handlers: CommandHandlers,
  ) {
    this.topics = new Topics(config.mqtt.baseTopic, config.deviceId, config.mqtt.responseTopicPrefix);
    this.backoffMs = config.mqtt.reconnectMinMs;
    const router = new CommandRouter(
      { ...handlers, config: () => this.config, snapshot: (ms) => this.snapshot(ms) },
      config.mqtt.maxCommandBytes,
    );
    this.commands = new CommandQueue(router, this.topics, {
      deviceId: () => this.config.deviceId,
      store: (m) => this.outbox.add(m),
      logger,
    });
  }

  /** The config now in force (set_config, config bundles): masks, rates and expiry follow it. */
  setConfig(c: Config): void {
    this.config = c;
  }

  /** The alert service's sink: resolves once the alert is on disk in the outbox (MQTT only delivers it). */
  async storeAlert(a: AlertPayload): Promise<void> {
    const dropped = await this.outbox.add(outboxMessage('alert', this.topics.alert, a));
    if (dropped) this.logger.error({ dropped, total: this.outbox.dropped }, 'outbox full: oldest messages dropped');
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  get outboxSize(): number {
    return this.outbox?.size ?? 0;
  }

  async start(): Promise<void> {
    const m = this.config.mqtt;
    this.outbox = await Outbox.open(join(this.config.stateDir, 'outbox'), m.outbox);
    if (this.outbox.size)
      this.logger.info({ messages: this.outbox.size }, 'outbox holds undelivered messages from an earlier run');
    let url = m.url;
    let protocolVersion = m.protocolVersion;
    if (!url) {
      try {
        this.broker = await EmbeddedBroker.start(m.embeddedPort);
        url = `mqtt://127.0.0.1:${this.broker.port}`;
        protocolVersion = 4;
        this.logger.info(
          { url },
          `no mqtt.url configured: embedded broker on 127.0.0.1:${this.broker.port}. Subscribe with: mosquitto_sub ` +
            `-h 127.0.0.1 -p ${this.broker.port} -t '${this.config.mqtt.baseTopic}/#' -v`,
        );
      } catch (err) {
        this.logger.error({ err }, 'embedded broker could not start; running without MQTT until it can');
        url = `mqtt://127.0.0.1:${m.embeddedPort}`;
        protocolVersion = 4;
      }
    }
    if (m.url) url = await pinPlainToLoopback(m.url, m.allowInsecure);
    this.url = url;
    const opts = { ...clientOptions(this.config, this.topics, this.since), protocolVersion };
    this.running = true;
    const client = mqtt.connect(url, opts);
    this.client = client;
    client.on('connect', () => {
      this.backoffMs = m.reconnectMinMs;
      client.options.reconnectPeriod = this.backoffMs;
      this.logger.info({ url }, 'mqtt connected');
      void this.onConnect();
    });
    client.on('close', () => {
      // exponential backoff between reconnect attempts
      this.backoffMs = Math.min(m.reconnectMaxMs, this.backoffMs * 2);
      client.options.reconnectPeriod = this.backoffMs;
    });
    client.on('offline', () =>
      this.logger.warn({ url, retryMs: client.options.reconnectPeriod }, 'mqtt offline, reconnecting'),
    );
    client.on('error', (err) => this.logger.warn({ err }, 'mqtt error'));
    client.on('message', (topic, payload, packet) =>
      this.commands.receive(topic, payload, packet.properties, packet.retain),
    );
    this.offResult = this.host.onResult((r) => this.publishResult(r));
    this.delivery = deliverOutbox({
      outbox: this.outbox,
      client: () => this.client,
      running: () => this.running,
      topics: this.topics,
      logger: this.logger,
      limits: () => this.config.mqtt.outbox,
      expiries: () => this.config.mqtt,
    });
    this.timers.push(setInterval(() => void this.publishTelemetry(), m.telemetryIntervalS * 1000));
    this.timers.push(setInterval(() => void this.publishStatusIfChanged(), 1000));
    for (const t of this.timers) t.unref();
  }

  /** Birth message (retained) and subscriptions, on every (re)connect. */
  private async onConnect(): Promise<void> {
    try {
      // subscribe before the birth message: whoever sees "online" can send commands at once
      // MQTT 5: rh 2 = the broker hands over no retained request at subscribe (3.1.1: receive() drops them)
      await this.client?.subscribeAsync(this.topics.requests, {
        qos: TOPIC_TABLE.request.qos,
        ...(this.config.mqtt.protocolVersion === 5 ? { rh: 2 } : {}),
      });
      await this.publishStatus(true);
      this.outbox.wakeAll();
    } catch (err) {
      this.logger.warn({ err }, 'birth/subscribe failed');
    }
  }

  statusPayload(state?: StatusPayload['state']): StatusPayload {
    const s = this.host.status();
    let computed: StatusPayload['state'] = 'online';
    let reason: string | null = null;
    const cap = s.capture;
    if (!s.model) {
      computed = 'degraded';
      reason = 'no model loaded';
    } else if (cap && cap.state !== 'running' && cap.state !== 'starting') {
      computed = 'degraded';
      reason = `capture ${cap.state}${cap.lastError ? `: ${cap.lastError}` : ''}`;
    }
    // a clean stop says so by its state: the model is already released then, which is no fault to report
    if (state === 'offline') reason = null;
    return {
      state: state ?? computed,
      deviceId: this.config.deviceId,
      version: s.version,
      model: s.model
        ? { name: s.model.name, sha256: s.model.sha256, provider: s.model.provider, version: s.model.version }
        : null,
      capture: cap,
      reason,
      imaging: s.imaging,
      since: s.since,
      time: Date.now(),
    };
  }

  private async publishStatus(force = false, state?: StatusPayload['state']): Promise<void> {
    const p = this.statusPayload(state);
    const key = [
      p.state,
      p.reason,
      p.capture?.state,
      p.model?.sha256,
      p.model?.provider,
      p.imaging?.imaging,
      p.imaging?.reason,
    ].join('|');
    if (!force && key === this.lastStatusKey) return;
    this.lastStatusKey = key;
    if (!this.connected) return;
    await publishTo(this.client!, this.topics, 'status', p, this.config.mqtt);
  }

  private async publishStatusIfChanged(): Promise<void> {
    try {
      await this.publishStatus(false);
    } catch (err) {
      this.logger.debug({ err }, 'status publish failed');
    }
  }

  /** An update step, through the outbox (in order, durable); the updater's progress, wired by the daemon. */
  storeUpdate(p: UpdateProgressFields): void {
    const payload: UpdatePayload = { messageId: randomUUID(), deviceId: this.config.deviceId, time: Date.now(), ...p };
    void this.outbox
      .add(outboxMessage('update', this.topics.update, payload))
      .catch((err: unknown) => this.logger.error({ err }, 'update progress could not be stored'));
  }

  private publishResult(r: FrameResult): void {
    if (!this.connected) {
      this.resultsDroppedOffline++;
      return;
    }
    const maskMode = this.config.mqtt.mask.mode;
    const maskDue = maskMode !== 'off' && Date.now() - this.lastMaskAt >= 1000 / this.config.mqtt.mask.maxPerSecond;
    if (maskDue) this.lastMaskAt = Date.now();
    const result: ResultPayload = {
      deviceId: this.config.deviceId,
      seq: r.seq,
      capturedAt: r.capturedAt,
      processedAt: r.processedAt,
      width: r.width,
      height: r.height,
      roi: r.roi,
      nodules: r.nodules,
      latencyMs: r.processedAt - r.capturedAt,
      imaging: r.imaging.imaging,
      imagingReason: r.imaging.reason,
      viewChanged: r.imaging.viewChanged,
      ...(r.imaging.rescaled !== null ? { viewRescaled: r.imaging.rescaled } : {}),
      ...(maskDue && maskMode === 'rle' ? { mask: encodeRle(r.mask, r.width, r.height) } : {}),
    };
    const c = this.client!;
    // best effort: a failed publish loses this frame's result only (the next frame brings a new one)
    const lost = (err: unknown) => this.logger.debug({ err }, 'result/mask publish failed');
    publishTo(c, this.topics, 'result', result, this.config.mqtt).catch(lost);
    if (maskDue && maskMode === 'png') {
      const userProperties = {
        seq: String(r.seq),
        capturedAt: String(r.capturedAt),
        width: String(r.width),
        height: String(r.height),
      };
      encodePng(r.mask, r.width, r.height)
        .then((png) =>
          this.connected ? publishTo(c, this.topics, 'mask', png, this.config.mqtt, { userProperties }) : undefined,
        )
        .catch(lost);
    }
  }

  private async snapshot(timeoutMs: number): Promise<SnapshotResult> {
    const r = await this.host.nextResult(timeoutMs);
    return {
      seq: r.seq,
      capturedAt: r.capturedAt,
      width: r.width,
      height: r.height,
      roi: r.roi,
      nodules: r.nodules,
      maskRle: encodeRle(r.mask, r.width, r.height),
      maskPngBase64: (await encodePng(r.mask, r.width, r.height)).toString('base64'),
    };
  }

  /** `time`: when the tick fired, so that messages keep the interval however long reading the system took */
  telemetryPayload(sys: Awaited<ReturnType<typeof readSystem>>, time = Date.now()): TelemetryPayload {
    const p = this.host.pipelineStats();
    return {
      deviceId: this.config.deviceId,
      time,
      processedFps: p?.processedFps ?? 0,
      droppedFps: p?.droppedFps ?? 0,
      processed: p?.processed ?? 0,
      dropped: p?.dropped ?? 0,
      frameErrors: p?.errors ?? 0,
      stagesMs: p?.stagesMs ?? {},
      outbox: {
        messages: this.outbox.size,
        bytes: this.outbox.sizeBytes,
        dropped: this.outbox.dropped,
        deadLettered: this.outbox.deadLettered,
      },
      resultsDroppedOffline: this.resultsDroppedOffline,
      requestsDropped: this.commands.droppedFull,
      imaging: this.host.status().imaging,
      cpu: { loadPercent: sys.loadPercent, temperatureC: sys.temperatureC },
      memory: {
        rssBytes: process.memoryUsage().rss,
        systemUsedBytes: sys.systemUsedBytes,
        systemTotalBytes: sys.systemTotalBytes,
      },
      disk: sys.disk,
    };
  }

  private async publishTelemetry(): Promise<void> {
    if (!this.connected || this.telemetryBusy) return;
    this.telemetryBusy = true;
    const firedAt = Date.now();
    try {
      // bounded by the interval: a reading that hangs is sent as null rather than stopping telemetry
      const sys = await readSystem(this.config.stateDir, this.config.mqtt.telemetryIntervalS * 1000);
      const payload = this.telemetryPayload(sys, firedAt);
      if (this.client) await publishTo(this.client, this.topics, 'telemetry', payload, this.config.mqtt);
    } catch (err) {
      this.logger.warn({ err }, 'telemetry failed');
    } finally {
      this.telemetryBusy = false;
    }
  }

  private async drainOutbox(maxMs: number): Promise<void> {
    const until = Date.now() + maxMs;
    while (this.running && this.client?.connected && (this.outbox?.size ?? 0) > 0 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
  }

  async stop(): Promise<void> {
    if (!this.running && !this.client) return; // already stopped
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.offResult?.();
    await this.outbox?.settled(); // the last frame's alerts are on disk before we go
    // while connected, a clean stop lets the delivery loop send what is queued (the shutdown's nodule_cleared),
    // so subscribers do not see a track open until the next start; bounded, and kept on disk if it runs out
    await this.drainOutbox(STOP_DRAIN_MS);
    this.running = false;
    this.outbox?.wakeAll();
    const c = this.client;
    if (c) {
      if (c.connected) {
        // a clean shutdown says so itself (the Last Will is for crashes)
        await Promise.race([
          this.publishStatus(true, 'offline').catch(() => undefined),
          new Promise((r) => setTimeout(r, 2000)),
        ]);
      }
      this.client = null;
      await Promise.race([
        new Promise<void>((r) => c.end(true, {}, () => r())),
        new Promise((r) => setTimeout(r, 2000)),
      ]);
    }
    await Promise.race([this.delivery, new Promise((r) => setTimeout(r, 2000))]);
    await this.broker?.stop();
    this.broker = null;
  }
}
