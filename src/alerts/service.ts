/**
 * The alert service: subscribes to frame results, runs the tracker, and emits alert events.
 * Crash semantics: persist first, then log and deliver. For every event, in order:
 *   1. nodule_detected: the track store (next id + open tracks) is written and fsync'd;
 *   2. the alert is stored durably (the outbox: temp file, fsync, rename, fsync of the directory);
 *   3. only then the "alert" log line and the listeners (live view, tests).
 * At start-up, tracks the store still holds as open (a crash, a power cut) are closed with
 * nodule_cleared (reason `restart`); a detected message that may not have reached the outbox is
 * stored again first, with its original messageId (subscribers deduplicate on it).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { AlertPayload } from './payload.js';
import type { FrameResult } from '../inference/frame-processor.js';
import type { TrackerOptions } from './tracker.js';

/** What the alert service needs of the daemon's config (the config schema lives above this room). */
export interface AlertServiceConfig {
  deviceId: string;
  stateDir: string;
  alerts: TrackerOptions;
}
import { TrackStore } from './track-store.js';
import { AlertTracker, type AlertEvent, type ClearReason } from './tracker.js';
import { Emitter } from '../util/emitter.js';

/** Where alerts go durably (the MQTT outbox); resolves once the message is on disk. */
export interface AlertSink {
  store(a: AlertPayload): Promise<void>;
}

/** Every processed frame, to whoever listens; `onResult` returns the unsubscribe. */
export interface ResultFeed {
  onResult(l: (r: FrameResult) => void): () => void;
}

export class AlertService {
  private tracker: AlertTracker;
  private chain: Promise<void> = Promise.resolve();
  private readonly alerts: Emitter<AlertPayload>;
  private off: (() => void) | null = null;
  private lastSeq = 0;
  private stopped = false;

  private constructor(
    private config: AlertServiceConfig,
    private readonly store: TrackStore,
    private readonly sink: AlertSink,
    private readonly logger: Logger,
  ) {
    this.tracker = this.newTracker(config);
    this.alerts = new Emitter<AlertPayload>('alert', logger);
  }

  static async open(config: AlertServiceConfig, sink: AlertSink, logger: Logger): Promise<AlertService> {
    const store = await TrackStore.load(join(config.stateDir, 'alerts', 'tracks.json'));
    const s = new AlertService(config, store, sink, logger);
    await s.recover();
    return s;
  }

  private newTracker(c: AlertServiceConfig): AlertTracker {
    return new AlertTracker(c.alerts, () => this.store.takeId());
  }

  /** Tracks open at a crash: their detected message (if it may be missing), then a clear with reason restart. */
  private async recover(): Promise<void> {
    const open = [...this.store.open.values()];
    if (open.length === 0) return;
    for (const r of open) {
      if (!r.announced) await this.sink.store(r.detected);
      const cleared: AlertPayload = {
        ...r.detected,
        messageId: randomUUID(),
        time: Date.now(),
        event: 'nodule_cleared',
        reason: 'restart',
      };
      await this.sink.store(cleared);
      this.store.open.delete(r.detected.trackId);
      await this.store.save();
      this.logger.info(
        { event: cleared.event, trackId: cleared.trackId, messageId: cleared.messageId, reason: 'restart' },
        'alert',
      );
      this.emit(cleared);
    }
  }

  attach(feed: ResultFeed): void {
    this.off?.();
    this.off = feed.onResult((r) => this.onResult(r));
  }

  onAlert(l: (a: AlertPayload) => void): () => void {
    return this.alerts.on(l);
  }

  get openTracks(): number {
    return this.tracker.activeTracks;
  }

  /** Resolves once every event raised so far is stored, logged and delivered to listeners. */
  settled(): Promise<void> {
    return this.chain;
  }

  private onResult(r: FrameResult): void {
    if (this.stopped) return;
    this.lastSeq = r.seq;
    const events = this.tracker.update({
      seq: r.seq,
      capturedAt: r.capturedAt,
      width: r.width,
      height: r.height,
      nodules: r.nodules,
      imaging: r.imaging.imaging,
      frameOk: r.imaging.frameOk,
      viewChanged: r.imaging.viewChanged,
    });
    this.enqueue(events);
  }

  /**
   * set_config / config bundle: a change of alerts.* closes open tracks (reason config_changed) before the
   * new settings apply.
   */
  applyConfig(c: AlertServiceConfig): void {
    const changed = JSON.stringify(c.alerts) !== JSON.stringify(this.config.alerts);
    this.config = c;
    if (!changed) return;
    this.enqueue(this.tracker.clearAll(this.lastSeq, 'config_changed'));
    this.tracker = this.newTracker(c);
  }

  /** Clean shutdown: open tracks are cleared (reason shutdown) and stored before it returns. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.off?.();
    this.off = null;
    this.enqueue(this.tracker.clearAll(this.lastSeq, 'shutdown'));
    this.stopped = true;
    await this.chain;
  }

  private enqueue(events: AlertEvent[]): void {
    if (events.length === 0) return;
    const payloads: AlertPayload[] = events.map((ev) => ({
      messageId: randomUUID(),
      deviceId: this.config.deviceId,
      time: Date.now(),
      ...ev,
    }));
    this.chain = this.chain.then(async () => {
      for (const p of payloads) {
        try {
          await this.persistAndStore(p);
        } catch (err) {
          this.logger.error({ err, event: p.event, trackId: p.trackId }, 'alert could not be stored');
          continue;
        }
        // logged only once it is on disk: a log line is a promise of delivery
        this.logger.info(
          {
            event: p.event,
            trackId: p.trackId,
            seq: p.frameSeq,
            messageId: p.messageId,
            ...(p.reason ? { reason: p.reason } : {}),
          },
          'alert',
        );
        this.emit(p);
      }
    });
  }

  private async persistAndStore(p: AlertPayload): Promise<void> {
    const open = this.store.open;
    if (p.event === 'nodule_detected') {
      open.set(p.trackId, { detected: p, announced: false });
      await this.store.save(); // the id and the open track, before anyone can hear of it
      await this.sink.store(p);
      open.set(p.trackId, { detected: p, announced: true });
      await this.store.save();
    } else if (p.event === 'nodule_cleared') {
      // stored before the track leaves the store: a crash in between repeats the clear, never loses it
      await this.sink.store(p);
      open.delete(p.trackId);
      await this.store.save();
    } else {
      await this.sink.store(p);
    }
  }

  private emit(p: AlertPayload): void {
    this.alerts.emit(p);
  }
}

export type { ClearReason };
