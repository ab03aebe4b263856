/** Starts Debian's mosquitto on a free loopback port with a generated config (tests: one per suite; fleet bench). */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/**
 * Until mosquitto accepts connections on `port`. Keyed on the process, not on an idle machine's
 * timing: an exit fails at once with its log; a live process gets a generous backstop.
 */
async function waitForPort(port: number, proc: ChildProcess, log: () => string, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(
        `mosquitto exited (${proc.exitCode ?? proc.signalCode}) before opening port ${port}: ${log().trim()}`,
      );
    }
    const ok = await new Promise<boolean>((r) => {
      const c = connect(port, '127.0.0.1');
      c.once('connect', () => {
        c.destroy();
        r(true);
      });
      c.once('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`mosquitto did not open port ${port} within ${timeoutMs} ms: ${log().trim()}`);
}

export class Mosquitto {
  private proc: ChildProcess | null = null;
  log = '';
  constructor(
    readonly dir: string,
    readonly port: number,
    private readonly extra: string,
  ) {}

  static async start(dir: string, opts: { port?: number; extra?: string; listener?: string } = {}): Promise<Mosquitto> {
    await mkdir(dir, { recursive: true });
    const port = opts.port ?? (await freePort());
    const m = new Mosquitto(dir, port, opts.extra ?? '');
    const conf = [
      opts.listener ?? `listener ${port} 127.0.0.1\nallow_anonymous true`,
      // as root, mosquitto would drop to the "mosquitto" user, which cannot read the test's
      // 0700 temp dirs (certs, password file, persistence); ignored when not root
      'user root',
      'persistence true',
      `persistence_location ${dir}/`,
      'autosave_interval 1',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      m.extra,
    ].join('\n');
    await writeFile(join(dir, 'mosquitto.conf'), `${conf}\n`);
    await m.restart();
    return m;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  async restart(): Promise<void> {
    this.proc = spawn('mosquitto', ['-c', join(this.dir, 'mosquitto.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    await waitForPort(this.port, this.proc, () => this.log);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
    this.proc = null;
  }
}
