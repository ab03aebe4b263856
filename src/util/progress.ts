/** A minimal stderr progress bar for CLI commands that work through many files. */
export class ProgressBar {
  private n = 0;
  private readonly started = Date.now();
  private readonly tty = process.stderr.isTTY === true;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly quiet = false,
  ) {}

  tick(item = ''): void {
    this.n++;
    if (this.quiet) return;
    const width = 30;
    const filled = Math.round((this.n / Math.max(this.total, 1)) * width);
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.n}/${this.total} ${item}`;
    if (this.tty) process.stderr.write(`\r${line.padEnd(80)}`);
    else if (this.n === this.total || this.n % 25 === 0) process.stderr.write(`${line}\n`);
  }

  done(): void {
    if (this.quiet) return;
    const s = ((Date.now() - this.started) / 1000).toFixed(1);
    process.stderr.write(`${this.tty ? '\n' : ''}${this.label}: ${this.n}/${this.total} in ${s} s\n`);
  }
}
