/**
 * sd_notify for a Node daemon. Node has no AF_UNIX datagram sockets, and the native wrappers need
 * libsystemd headers and a compiler for every target architecture. So this runs systemd's own
 * `systemd-notify`, which ships with every systemd. By default it waits until the manager has
 * processed the message (sd_notify_barrier), so a short-lived sender is still attributed to the
 * unit. The unit needs NotifyAccess=all for that. Without $NOTIFY_SOCKET (not under systemd)
 * every call does nothing.
 */
import { execFile } from 'node:child_process';
import type { Logger } from 'pino';

export class SystemdNotifier {
  private chain: Promise<void> = Promise.resolve();
  private warned = false;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly logger: Logger,
    private readonly binary = 'systemd-notify',
  ) {}

  get enabled(): boolean {
    return Boolean(this.env.NOTIFY_SOCKET);
  }

  /** Keep-alive period: half of WatchdogSec, when systemd armed a watchdog for this process. */
  get watchdogIntervalMs(): number | null {
    const usec = Number(this.env.WATCHDOG_USEC);
    const pid = this.env.WATCHDOG_PID;
    if (!this.enabled || !Number.isFinite(usec) || usec <= 0) return null;
    if (pid && Number(pid) !== process.pid) return null; // meant for another process (we were exec'd by a wrapper)
    return Math.max(50, usec / 2000);
  }

  /** Resolves when every queued notification has been sent. */
  settled(): Promise<void> {
    return this.chain;
  }

  /** Sends the assignments (READY=1, WATCHDOG=1, STATUS=..., STOPPING=1); in call order, never throws. */
  notify(...assignments: string[]): Promise<void> {
    if (!this.enabled) return Promise.resolve();
    this.chain = this.chain.then(
      () =>
        new Promise<void>((resolve) => {
          execFile(this.binary, assignments, { env: this.env, timeout: 10_000 }, (err) => {
            if (err && !this.warned) {
              this.warned = true;
              this.logger.error(
                { err: err.message, binary: this.binary },
                'sd_notify failed: systemd will not see READY or watchdog keep-alives',
              );
            }
            resolve();
          });
        }),
    );
    return this.chain;
  }
}
