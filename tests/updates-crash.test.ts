/**
 * kill -9 at random points of an install, 50 times: after each, exactly one complete model is
 * active (the old or the new one, every file matching its signed manifest, card matching model),
 * and the box starts serving with it.
 */
import { spawn, execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { Daemon } from '../src/daemon/daemon.js';
import { loadModelCard, sha256File } from '../src/inference/model-card.js';
import { generateKeyPair } from '../src/updates/signing.js';
import { verifyFiles } from '../src/updates/verify-bundle.js';
import { Updater } from '../src/updates/updater.js';
import { fixtureModel, makeModelBundle, phantomPngs } from './helpers/bundles.js';
import { logger, tempDir } from './helpers/fixtures.js';

const KILLS = 50;

/** The CLI install; killAfterMs counts from its first progress line (download start), not from process start. */
function runInstall(
  bundle: string,
  cfg: string,
  killAfterMs: number | null,
): Promise<{ killed: boolean; installMs: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('node', ['dist/src/cli.js', 'bundle', 'install', bundle, '-c', cfg], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let started = 0;
    let timer: NodeJS.Timeout | null = null;
    child.stdout.on('data', (chunk: Buffer) => {
      if (started || !chunk.toString().includes('"state":"downloading"')) return;
      started = Date.now();
      if (killAfterMs !== null) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ killed: signal === 'SIGKILL', installMs: started ? Date.now() - started : 0 });
    });
  });
}

describe('install killed with SIGKILL at random points', () => {
  it(`${KILLS} kills: always exactly one complete model active, old or new`, async () => {
    const key = generateKeyPair();
    const golden = await phantomPngs(2);
    const bundles = {
      '1.0.0': await makeModelBundle({ model: fixtureModel('brightness-a'), version: '1.0.0', key, golden }),
      '2.0.0': await makeModelBundle({ model: fixtureModel('brightness-b'), version: '2.0.0', key, golden }),
    };
    const stateDir = await tempDir('te-crash-');
    const cfg = join(stateDir, 'config.yaml');
    await writeFile(
      cfg,
      JSON.stringify({
        stateDir,
        updates: { allowFileUrls: true, allowDowngrade: true, trustedKeys: [key.publicKey] },
      }),
    );
    const updater = new Updater(await loadConfig(cfg), logger);
    const store = updater.stores.model;

    // one uninterrupted install tells how long the kill window is; every install that ends unkilled
    // measures it again, so the window follows the machine's load (a busy machine installs slower)
    const full = await runInstall(bundles['1.0.0'], cfg, null);
    await store.markGood();
    let windowMs = full.installMs;
    const outcomes = { old: 0, new: 0, killed: 0 };
    for (let i = 0; i < KILLS; i++) {
      const before = (await store.manifestOf(await store.active()))?.version ?? null;
      const target = before === '2.0.0' ? '1.0.0' : '2.0.0';
      // every tenth install runs to its end: a fresh measure of the window
      const killAfter = i % 10 === 9 ? null : Math.random() * windowMs * 1.4;
      const run = await runInstall(bundles[target], cfg, killAfter);
      if (run.killed) outcomes.killed++;
      else if (run.installMs > 0) windowMs = run.installMs;

      // what a restart sees: recovery (without counting a boot), then every file against the signed manifest
      await updater.recover({ countBoot: false });
      const slotNow = await store.active();
      const manifest = await store.manifestOf(slotNow);
      if (slotNow && manifest) await verifyFiles(store.slotDir(slotNow), manifest);
      const status = { version: manifest?.version ?? null };
      expect([before, target], `kill ${i}`).toContain(status.version);
      if (status.version === target) outcomes.new++;
      else outcomes.old++;
      // never a mix: the active card describes the active model file
      const slot = await store.active();
      const dir = slot ? store.slotDir(slot) : 'models';
      const card = await loadModelCard(join(dir, slot ? 'model.json' : 'thyroid-nodule-int8.json'));
      expect(await sha256File(join(dir, slot ? 'model.onnx' : 'thyroid-nodule-int8.onnx'))).toBe(card.sha256);
      await store.markGood(); // as if the next start passed its health window
    }
    console.log(
      `SIGKILL test: ${KILLS} runs, ${outcomes.killed} killed mid-install, ${outcomes.old} left the old model, ` +
        `${outcomes.new} the new one (an uninterrupted install took ${full.installMs} ms at first, ` +
        `${windowMs} ms last)`,
    );
    // the CLI's own check agrees
    const cliStatus = JSON.parse(
      execFileSync('node', ['dist/src/cli.js', 'bundle', 'status', '-c', cfg], { encoding: 'utf8' }),
    ).model;
    expect(cliStatus).toMatchObject({
      complete: true,
      version: (await store.manifestOf(await store.active()))?.version ?? null,
    });
    // both outcomes happened, and kills landed mid-install
    expect(outcomes.killed).toBeGreaterThan(0);
    expect(outcomes.old).toBeGreaterThan(0);
    expect(outcomes.new).toBeGreaterThan(0);

    // and the box starts and serves with whatever is active
    const config = await loadConfig(cfg);
    const bundlesNow = await new Updater(config, logger).recover();
    const daemon = new Daemon(config, logger, bundlesNow.model);
    await daemon.start();
    try {
      const r = await daemon.nextResult(20_000);
      expect(r.width).toBe(256);
    } finally {
      await daemon.stop();
    }
  }, 240_000);
});
