/** scripts/setup.sh, run by `npm test` (pretest) and .ci/run: quiet and quick when all is there, and
 *  when not root with a Debian package missing, it installs nothing and names the one command that does. */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers/fixtures.js';

const SCRIPT = 'scripts/setup.sh';

/** A PATH of links to every command on this one, less `without` (a machine without those packages). */
async function pathWithout(without: string[]): Promise<string> {
  const dir = await tempDir('te-path-');
  chmodSync(dir, 0o755); // the unprivileged run must be able to walk it
  const seen = new Set(without);
  for (const d of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    if (!d || !existsSync(d)) continue;
    for (const name of readdirSync(d)) {
      if (seen.has(name)) continue;
      seen.add(name);
      symlinkSync(join(d, name), join(dir, name));
    }
  }
  return dir;
}

describe('scripts/setup.sh', () => {
  it('with everything present: installs nothing, prints nothing, returns within 2 s', (ctx) => {
    const check = spawnSync('bash', [SCRIPT, '--check'], { encoding: 'utf8' });
    if (check.status !== 0) {
      console.log(`setup.test: skipped, this machine is not complete (run bash ${SCRIPT}):\n${check.stdout}`);
      ctx.skip();
    }
    const t0 = performance.now();
    const r = spawnSync('bash', [SCRIPT], { encoding: 'utf8' });
    const ms = performance.now() - t0;
    console.log(`setup.sh with everything present: ${ms.toFixed(0)} ms`);
    expect(r.status).toBe(0);
    expect(r.stdout + r.stderr).toBe('');
    expect(ms).toBeLessThan(2000);
  });

  it('not root, ffmpeg missing: stops at once, names the package and the one command that installs it', async () => {
    const env = { PATH: await pathWithout(['ffmpeg', 'ffprobe']), HOME: '/tmp' };
    // as root, drop to nobody for this run: the script must not try to install anything then
    const nobody = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];
    const argv = [...(process.getuid?.() === 0 ? nobody : []), 'bash', SCRIPT];
    const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Debian packages that are not installed: .*\bffmpeg\b/);
    expect(r.stderr).toContain('\n  sudo bash scripts/setup.sh\n');
    expect(r.stderr).not.toMatch(/^setup: /m); // no step started
    const check = spawnSync(argv[0]!, [...argv.slice(1), '--check'], { encoding: 'utf8', env });
    expect(check.status).toBe(1);
    expect(check.stdout).toMatch(/missing Debian packages: .*\bffmpeg\b/);
  });
});
