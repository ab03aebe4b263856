/**
 * systemd watchdog keep-alives that mean "frames are progressing". A tick sends WATCHDOG=1 only if
 * frames were processed (or failed) since the last tick, or if the source is legitimately idle:
 * a dongle being retried with backoff, or a file that ended. A pipeline that hangs while capture
 * claims to run gets no keep-alive, and systemd restarts the service after WatchdogSec.
 */
import type { Logger } from 'pino';
import type { CaptureState } from '../capture/frame-source.js';
import type { SystemdNotifier } from './systemd-notify.js';

export interface ProgressProbe {
  /** processed + failed frames so far; null while the pipeline is (re)starting */
  frames(): number | null;
  captureState(): CaptureState | null;
}

const IDLE_STATES: readonly CaptureState[] = ['retrying', 'ended', 'idle'];

export class FrameWatchdog {
  private timer: NodeJS.Timeout | null = null;
  private last: number | null = null;
  stalledTicks = 0;

  constructor(
    private readonly notifier: SystemdNotifier,
    private readonly probe: ProgressProbe,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const every = this.notifier.watchdogIntervalMs;
    if (every === null || this.timer) return;
    this.last = this.probe.frames();
    this.timer = setInterval(() => this.tick(), every);
    this.logger.info({ everyMs: every }, 'systemd watchdog keep-alives armed');
  }

  /** One decision; public for tests of the rule. */
  tick(): boolean {
    const frames = this.probe.frames();
    const state = this.probe.captureState();
    const progressed = frames !== null && this.last !== null && frames > this.last;
    const idle = state !== null && IDLE_STATES.includes(state);
    this.last = frames;
    if (progressed || idle) {
      this.stalledTicks = 0;
      void this.notifier.notify('WATCHDOG=1');
      return true;
    }
    this.stalledTicks++;
    this.logger.warn(
      { captureState: state, stalledTicks: this.stalledTicks },
      'no frame progress: withholding the watchdog keep-alive',
    );
    return false;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
