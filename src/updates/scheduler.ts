/** The scheduled update check (node-cron), e.g. nightly inside the maintenance window. */
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Updater } from './updater.js';

export class UpdateScheduler {
  private task: ScheduledTask | null = null;

  constructor(
    private readonly opts: Config['updates'],
    private readonly updater: Updater,
    private readonly logger: Logger,
  ) {}

  start(): void {
    if (!this.opts.schedule || !this.opts.manifestUrl) return;
    this.task = cron.schedule(
      this.opts.schedule,
      async () => {
        this.logger.info({ url: this.opts.manifestUrl }, 'scheduled update check');
        await this.updater
          .checkScheduled()
          .catch((err: unknown) => this.logger.error({ err }, 'scheduled update check failed'));
      },
      { noOverlap: true },
    );
    this.logger.info({ schedule: this.opts.schedule }, 'update checks scheduled');
  }

  stop(): void {
    void this.task?.stop();
    this.task = null;
  }
}
