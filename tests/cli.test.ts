/** The built CLI as a user runs it (npm test builds dist/ first). */
import { spawn } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { phantomVideo } from '../bench/phantom-video.js';
import { DEFAULT_PHANTOM } from '../src/capture/phantom.js';
import { tempDir } from './helpers/fixtures.js';
import { runCommand } from './helpers/run.js';

const CLI = 'dist/src/cli.js';

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCommand('node', [CLI, ...args], { env: { ...process.env, ...env }, timeoutMs: 120_000 });
}

describe('thyroid-edge CLI', () => {
  it('--version', async () => {
    const r = await cli(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('check-config: a good file prints the effective config; a bad one exits 2 naming the key', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'ok.yaml'), 'deviceId: ward-7\n');
    const ok = await cli(['check-config', join(dir, 'ok.yaml')]);
    expect(ok.status).toBe(0);
    expect(JSON.parse(ok.stdout).deviceId).toBe('ward-7');
    await writeFile(join(dir, 'bad.yaml'), 'capture:\n  phantom:\n    fps: fast\n');
    const bad = await cli(['check-config', join(dir, 'bad.yaml')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('capture.phantom.fps: must be number');
  });

  it('check-config and run take several files, merged in order', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'image.yaml'), 'deviceId: box-01\nlogLevel: warn\n');
    await writeFile(join(dir, 'box.yaml'), 'deviceId: box-17\n');
    const ok = await cli(['check-config', join(dir, 'image.yaml'), join(dir, 'box.yaml')]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ deviceId: 'box-17', logLevel: 'warn' });
    // run reads the same layers: the second file's bad key stops it before anything starts
    await writeFile(join(dir, 'box.yaml'), 'deviceId: box-17\nmqtt:\n  url: mqtt://broker.ward.example\n');
    const run = await cli(['run', '-c', join(dir, 'image.yaml'), '-c', join(dir, 'box.yaml')]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`${join(dir, 'image.yaml')} + ${join(dir, 'box.yaml')}: mqtt.url: plain mqtt`);
  });

  it('infer on phantom frames writes a mask PNG + JSON per frame and a summary scored on ground truth', async () => {
    const out = await tempDir();
    const r = await cli(['infer', '--phantom', '4', '--out', out, '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(summary.images).toBe(4);
    expect(summary.scored).toBe(4);
    expect(summary.provider).toBe('cpu');
    const files = (await readdir(out)).sort();
    expect(files).toContain('phantom-0000.mask.png');
    const j = JSON.parse(await readFile(join(out, 'phantom-0000.json'), 'utf8'));
    expect(j.rle.size).toEqual([j.height, j.width]);
    expect(Array.isArray(j.nodules)).toBe(true);
  });

  it('calibrate prints a ROI to paste and writes the PNG', async () => {
    const out = join(await tempDir(), 'roi.png');
    const r = await cli(['calibrate', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/roi: \{ x: \d+, y: \d+, width: \d+, height: \d+ \}/);
    expect((await readFile(out)).subarray(1, 4).toString()).toBe('PNG');
  });

  it('calibrate takes a new box config without a ROI (which run refuses), and its PNG hides the header', async () => {
    const dir = await tempDir();
    const video = await phantomVideo(dir, 10);
    const { screenWidth: W, screenHeight: H, roi } = DEFAULT_PHANTOM;
    const cfg = join(dir, 'box.yaml');
    await writeFile(cfg, `capture:\n  source: file\n  file: { path: ${video}, width: ${W}, height: ${H} }\n`);
    const check = await cli(['check-config', cfg]);
    expect(check.status).toBe(2);
    expect(check.stderr).toMatch(/capture\.roi: is required for source "file"/);
    const out = join(dir, 'roi.png');
    const r = await cli(['calibrate', '--config', cfg, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const m = /roi: \{ x: (\d+), y: (\d+), width: (\d+), height: (\d+) \}/.exec(r.stdout);
    expect(m).not.toBeNull();
    const [x, y] = [Number(m![1]), Number(m![2])];
    expect(Math.abs(x - roi.x)).toBeLessThanOrEqual(4);
    expect(Math.abs(y - roi.y)).toBeLessThanOrEqual(4);
    // the header band (patient data on a real screen) above the ROI: every 16x16 block one grey level
    const { data, info } = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([W, H]);
    const levels = new Set<number>();
    for (let py = 16; py < 32; py++) for (let px = 16; px < 32; px++) levels.add(data[(py * W + px) * info.channels]!);
    expect(levels.size).toBe(1);
  });

  it('run: processes frames, and SIGTERM finishes the frame in flight and exits 0', async () => {
    const dir = await tempDir();
    const child = spawn('node', [CLI, 'run'], {
      env: {
        ...process.env,
        THYROID_EDGE__stateDir: dir,
        THYROID_EDGE__capture__phantom__fps: '10',
        THYROID_EDGE__logLevel: 'debug',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    child.stdout.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    for (let i = 0; i < 300 && !log.includes('"frame processed"'); i++) await new Promise((r) => setTimeout(r, 100));
    expect(log).toContain('"frame processed"');
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(0);
    expect(log).toContain('"stopped"');
  });
});
