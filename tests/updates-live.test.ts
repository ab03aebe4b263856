/**
 * Updates on a running daemon through a real mosquitto: request/update, progress on the update
 * topic, the model switched between frames without stopping capture, automatic rollback after a
 * failed health window, config bundles, and a trial interrupted by a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config/schema.js';
import { sha256File } from '../src/inference/model-card.js';
import { generateKeyPair, type KeyPair } from '../src/updates/signing.js';
import { Updater } from '../src/updates/updater.js';
import { silentLogger } from '../src/util/logger.js';
import { bundleUrl, fixtureModel, makeConfigBundle, makeModelBundle, phantomPngs } from './helpers/bundles.js';
import {
  StallClock,
  expectValid,
  startDaemon,
  subscriber,
  testConfig,
  until,
  untilProgress,
} from './helpers/daemon.js';
import { CARD, MODEL, tempDir } from './helpers/fixtures.js';
import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { Mosquitto } from './helpers/mosquitto.js';

// the waits below end on events or on a stall; the test timeout is only a backstop on a busy machine
describe('updates on a running daemon (real mosquitto)', { timeout: 600_000 }, () => {
  let broker: Mosquitto;
  let sub: Awaited<ReturnType<typeof subscriber>>;
  let key: KeyPair;
  let golden: string[];
  const root = 'thyroid-edge/box-a';
  const json = (m: { payload: Buffer }) => JSON.parse(m.payload.toString());
  const of = (topic: string) => sub.messages.filter((m) => m.topic === `${root}/${topic}`).map(json);
  // Update reports and command responses come through the daemon's outbox, behind the alerts queued
  // before them; on a busy machine that queue drains slowly. Their waits are bounded by the outbox
  // going silent, not by a total time sized for an idle machine.
  const outboxTraffic = () => sub.messages.filter((m) => /\/(alert|update|response\/[\w-]+)$/.test(m.topic)).length;
  const delivered = <T>(fn: () => T | undefined | false, what: string) =>
    untilProgress(fn, outboxTraffic, 60_000, what);

  beforeAll(async () => {
    broker = await Mosquitto.start(await tempDir('te-mq-upd-'));
    sub = await subscriber(broker.url, `${root}/#`);
    key = generateKeyPair();
    golden = await phantomPngs(2);
  });

  afterAll(async () => {
    sub?.client.end(true);
    await broker?.stop();
  });

  const config = (updates: Record<string, unknown> = {}, stateDir?: string): Promise<Config> =>
    testConfig(broker.url, {
      ...(stateDir ? { stateDir } : {}),
      updates: { allowFileUrls: true, trustedKeys: [key.publicKey], health: { frames: 8, timeoutS: 30 }, ...updates },
    });

  const request = (command: string, body: unknown) =>
    sub.client.publishAsync(`${root}/request/${command}`, JSON.stringify(body), { qos: 1 });
  const updatesFor = (tx: string) => of('update').filter((u) => u.transaction === tx);
  let pings = 0;
  /** the daemon answers commands (subscribed) */
  const ready = async () => {
    const tx = `ping-${++pings}`;
    // resent until answered: a request sent before the daemon subscribed is not queued for it; the
    // bound is silence (no reply and no outbox traffic for 60 s of CPU time), not a number of tries
    const clock = new StallClock(outboxTraffic);
    for (;;) {
      await request('ping', { transaction: tx });
      const got = await until(() => of('response/ping').find((r) => r.transaction === tx), 500, 'ping reply').catch(
        () => null,
      );
      if (got) return;
      if (clock.stalledMs() > 60_000) throw new Error('daemon never answered ping');
    }
  };
  const finalFor = (tx: string) =>
    delivered(
      () => updatesFor(tx).find((u) => ['active', 'rolled_back', 'failed'].includes(u.state)),
      `final update state of ${tx}`,
    );
  /** frames keep coming: the progress of waits on the pipeline */
  const framesOf = (d: Awaited<ReturnType<typeof startDaemon>>) => () => d.daemon.status().capture?.framesCaptured;

  it('request/update installs a model between two frames: progress reported, capture never stopped', async () => {
    const d = await startDaemon(await config());
    try {
      await d.daemon.nextResult(120_000);
      const capturedBefore = d.daemon.status().capture!.framesCaptured;
      const b = await makeModelBundle({ model: fixtureModel('brightness-b'), version: '1.0.0', key, golden });
      await ready();
      await request('update', { url: bundleUrl(b), transaction: 'u1' });
      const reply = await delivered(() => of('response/update').find((r) => r.transaction === 'u1'), 'update response');
      expect(reply).toMatchObject({ ok: true, result: { accepted: true } });
      const last = await finalFor('u1');
      expect(last.state).toBe('active');
      const steps = updatesFor('u1');
      for (const u of steps) expectValid('update', u);
      expect(steps.map((u) => u.state)).toEqual([
        'downloading',
        'verifying',
        'testing',
        'testing',
        'testing',
        'active',
      ]);
      expect(steps[4].detail).toMatch(/health window: 8 frames/);
      const s = d.daemon.status();
      expect(s.model).toMatchObject({ version: '1.0.0', sha256: await sha256File(fixtureModel('brightness-b')) });
      // the same source and pipeline kept running: no capture restart, counters never reset
      expect(s.capture!.restarts).toBe(0);
      expect(s.capture!.framesCaptured).toBeGreaterThan(capturedBefore + 8);
      const status = await untilProgress(
        () =>
          of('status')
            .reverse()
            .find((x) => x.model?.version === '1.0.0'),
        framesOf(d),
        60_000,
        'status with the new model',
      );
      expectValid('status', status);
    } finally {
      await d.stop();
    }
  });

  it('with no trusted key, or no fleet host, request/update is refused at once and nothing is fetched', async () => {
    let connections = 0;
    const srv = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    const refused: [Record<string, unknown>, string, RegExp][] = [
      [{ trustedKeys: [] }, 'nokeys', /updates\.trustedKeys is empty/],
      // keys but neither allowedHosts nor manifestUrl: the sender would pick any host and port of the hospital
      [{}, 'nohosts', /updates\.allowedHosts is unset and updates\.manifestUrl is not an https URL/],
    ];
    for (const [updates, tx, reason] of refused) {
      const d = await startDaemon(await config(updates));
      try {
        await ready();
        await request('update', { url: `https://127.0.0.1:${port}/manifest.json`, transaction: tx });
        const r = await delivered(() => of('response/update').find((x) => x.transaction === tx), `reply ${tx}`);
        expect(r).toMatchObject({ ok: false, error: expect.stringMatching(reason) });
        expect(updatesFor(tx)).toEqual([]);
      } finally {
        await d.stop();
      }
    }
    expect(connections).toBe(0);
    srv.close();
  });

  it('a bad request is answered with the reason; the model keeps serving', async () => {
    const d = await startDaemon(await config());
    try {
      await ready();
      await request('update', { transaction: 'bad1' });
      await request('update', { url: 'http://fleet.example/m.json', transaction: 'bad2' });
      const r1 = await delivered(() => of('response/update').find((r) => r.transaction === 'bad1'), 'reply bad1');
      const r2 = await delivered(() => of('response/update').find((r) => r.transaction === 'bad2'), 'reply bad2');
      expect(r1).toMatchObject({ ok: false, error: expect.stringMatching(/url: is required/) });
      expect(r2).toMatchObject({ ok: false, error: expect.stringMatching(/http: is refused/) });
      // a tampered bundle is accepted for work, then fails verification
      const b = await makeModelBundle({
        model: fixtureModel('brightness-b'),
        version: '1.0.0',
        key: generateKeyPair(),
        golden,
      });
      await request('update', { url: bundleUrl(b), transaction: 'bad3' });
      expect((await finalFor('bad3')).reason).toMatch(/signed by unknown key/);
      expect(d.daemon.status().model!.version).toBeNull();
      await d.daemon.nextResult(120_000);
    } finally {
      await d.stop();
    }
  });

  it('a model that fails its health window is rolled back automatically', async () => {
    // the new model must not be slower than 0.001 x the old one: it cannot pass
    const d = await startDaemon(await config({ health: { frames: 8, timeoutS: 30, latencyFactor: 0.001 } }));
    try {
      await untilProgress(() => d.daemon.inferenceP50() !== null, framesOf(d), 60_000, 'a baseline latency');
      const b = await makeModelBundle({ model: fixtureModel('brightness-b'), version: '1.0.0', key, golden });
      await ready();
      await request('update', { url: bundleUrl(b), transaction: 'rb' });
      const last = await finalFor('rb');
      expect(last.state).toBe('rolled_back');
      expect(last.reason).toMatch(/inference p50 .* over 0\.001 x the previous model's/);
      expect(d.daemon.status().model).toMatchObject({ version: null, sha256: await sha256File(MODEL) });
      await d.daemon.nextResult(120_000); // still serving
      expect(await d.updater.stores.model.active()).toBeNull();
    } finally {
      await d.stop();
    }
  });

  it('a config bundle applies without a restart; its version survives a restart', async () => {
    const stateDir = await tempDir('te-state-cfg-');
    const d = await startDaemon(await config({}, stateDir));
    try {
      const b = await makeConfigBundle({ postprocess: { minAreaPx: 77 }, alerts: { memoryS: 4 } }, '3.1.0', key);
      await ready();
      await request('update', { url: bundleUrl(b), transaction: 'cfg' });
      expect((await finalFor('cfg')).state).toBe('active');
      expect(d.daemon.currentConfig.postprocess.minAreaPx).toBe(77);
      expect(
        updatesFor('cfg')
          .slice(1)
          .every((u) => u.kind === 'config' && u.version === '3.1.0'),
      ).toBe(true);
    } finally {
      await d.stop();
    }
    const again = await startDaemon(await config({}, stateDir));
    try {
      expect(again.daemon.currentConfig.postprocess.minAreaPx).toBe(77);
      expect(again.daemon.currentConfig.alerts.memoryS).toBe(4);
    } finally {
      await again.stop();
    }
  });

  it('a restart during the health window rolls the trial back at the next start', async () => {
    const stateDir = await tempDir('te-state-trial-');
    const d = await startDaemon(await config({ health: { frames: 100000, timeoutS: 600 } }, stateDir));
    const b = await makeModelBundle({ model: fixtureModel('brightness-b'), version: '1.0.0', key, golden });
    await ready();
    await request('update', { url: bundleUrl(b), transaction: 'trial' });
    await delivered(
      () => updatesFor('trial').find((u) => /health window/.test(u.detail ?? '')),
      'health window started',
    );
    expect(d.daemon.status().model!.version).toBe('1.0.0');
    await d.stop(); // like a crash or power cut before the window passed
    const again = await startDaemon(await config({}, stateDir));
    try {
      expect(again.daemon.status().model).toMatchObject({ version: null, sha256: await sha256File(MODEL) });
      const rb = await delivered(
        () => of('update').find((u) => u.state === 'rolled_back' && /restarted 1 time/.test(u.reason ?? '')),
        'rollback report after restart',
      );
      expectValid('update', rb);
    } finally {
      await again.stop();
    }
  });

  it('the scheduled check (node-cron) installs a newer bundle, and then finds nothing newer', async () => {
    const b = await makeModelBundle({ model: fixtureModel('brightness-b'), version: '4.0.0', key, golden });
    const d = await startDaemon(await config({ schedule: '* * * * * *', manifestUrl: bundleUrl(b), quietS: 0 }));
    try {
      const done = await delivered(
        () => of('update').find((u) => u.version === '4.0.0' && u.state === 'active'),
        'scheduled install',
      );
      expect(done.transaction).toBeNull();
      const count = of('update').filter((u) => u.version === '4.0.0').length;
      await new Promise((r) => setTimeout(r, 2500)); // two more ticks
      expect(of('update').filter((u) => u.version === '4.0.0').length).toBe(count);
      expect(d.daemon.status().model!.version).toBe('4.0.0');
    } finally {
      await d.stop();
    }
  });

  it('a scheduled check is deferred while a scan is running (a nodule seen within quietS)', async () => {
    const b = await makeModelBundle({ model: fixtureModel('brightness-b'), version: '5.0.0', key, golden });
    const d = await startDaemon(await config({ manifestUrl: bundleUrl(b), quietS: 300 }));
    try {
      await untilProgress(() => d.daemon.lastNoduleAt() !== null, framesOf(d), 60_000, 'a nodule on the phantom');
      expect(await d.updater.checkScheduled()).toBeNull();
      expect(d.updater.busy).toBe(false);
      expect(d.daemon.status().model!.version).toBeNull();
    } finally {
      await d.stop();
    }
  });

  it('a model with other preprocessing restarts the pipeline once, then passes its window', async () => {
    const d = await startDaemon(await config());
    try {
      await d.daemon.nextResult(120_000);
      const card = JSON.parse(await readFile(CARD, 'utf8')) as { preprocessing: { clahe: Record<string, unknown> } };
      const other = {
        ...card.preprocessing,
        clahe: { ...card.preprocessing.clahe, method: card.preprocessing.clahe.method === 'tiles' ? 'local' : 'tiles' },
      };
      const b = await makeModelBundle({
        model: fixtureModel('brightness-b'),
        version: '6.0.0',
        key,
        golden,
        preprocessing: other,
      });
      await ready();
      await request('update', { url: bundleUrl(b), transaction: 'pre' });
      expect((await finalFor('pre')).state).toBe('active');
      expect(d.daemon.status().model!.version).toBe('6.0.0');
      const r = await d.daemon.nextResult(120_000); // serving on the new pipeline
      expect(r.width).toBe(256);
    } finally {
      await d.stop();
    }
  });

  it('a trial resumed at start-up that fails its window goes back to the model before it', async () => {
    const stateDir = await tempDir('te-state-resume-');
    // installed offline (daemon stopped): its health window runs at the next start
    const offline = new Updater(await config({}, stateDir), silentLogger());
    await offline.recover();
    const b = await makeModelBundle({ model: fixtureModel('brightness-b'), version: '7.0.0', key, golden });
    expect((await offline.install(bundleUrl(b))).detail).toMatch(/next daemon start/);
    const d = await startDaemon(await config({ health: { frames: 100000, timeoutS: 2 } }, stateDir));
    try {
      expect(d.daemon.status().model!.version).toBe('7.0.0');
      // waits key on events, not on how fast an idle machine gets there: the window opens (its
      // progress message), the trial is decided (the updater settles: window over, model reverted),
      // then its report arrives through the outbox
      const testing = await delivered(
        () => of('update').find((u) => u.version === '7.0.0' && u.state === 'testing'),
        'health window of the resumed trial',
      );
      expect(testing.detail).toMatch(/health window: 100000 frames within 2 s/);
      await d.updater.settled();
      const rb = await delivered(
        () => of('update').find((u) => u.version === '7.0.0' && u.state === 'rolled_back'),
        'rollback report of the resumed trial',
      );
      expect(rb.reason).toMatch(/only \d+ of 100000 frames in 2 s/);
      // no old model was in memory after the restart: the factory model is loaded again and serves
      expect(d.daemon.status().model).toMatchObject({ version: null, sha256: await sha256File(MODEL) });
      await d.daemon.nextResult(120_000); // the factory model serves: the next frame event
      expect(await d.updater.stores.model.active()).toBeNull();
    } finally {
      await d.stop();
    }
  });
});
