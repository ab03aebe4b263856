/**
 * The phantom as `npm start` runs it (config/npm-start.yaml over the schema's defaults: phantom, shipped model,
 * alerts and gate, read from the schema rather than copied here), against a real mosquitto: exactly one
 * nodule_detected per appearance of the phantom's nodule, and none while it is away. The default phantom lifts
 * the probe between appearances (`liftWhenAbsent`), so a track ends at the imaging gate; kept on the nodule-free
 * gland, the shipped model marks the gland (README, "Phantom") and the appearances run into one track.
 *
 * Until this test read the defaults from the schema it ran on its helper's phantom (probe lifted, a larger
 * visible fraction), while the schema's default left the probe on the gland: `npm start` then raised one alert in
 * a minute for six appearances.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_TRACKER } from '../src/alerts/tracker.js';
import { validateConfig } from '../src/config/load.js';
import { DEFAULT_PHANTOM, PhantomGenerator } from '../src/capture/phantom.js';
import type { AlertPayload } from '../src/mqtt/payloads.js';
import { startDaemon, subscriber, testConfig, until } from './helpers/daemon.js';
import { tempDir } from './helpers/fixtures.js';
import { Mosquitto } from './helpers/mosquitto.js';

const CYCLES = 3;

describe('phantom alerts with the npm start config (real daemon, real mosquitto)', () => {
  const cleanup: (() => Promise<unknown> | unknown)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  }, 60_000);

  it('one nodule_detected per appearance of the nodule', async () => {
    const startYaml = parse(readFileSync('config/npm-start.yaml', 'utf8')) as Record<string, unknown>;
    const dir = await tempDir('te-phantom-alerts-');
    const broker = await Mosquitto.start(join(dir, 'mq'));
    cleanup.push(() => broker.stop());
    const sub = await subscriber(broker.url, 'thyroid-edge/box-a/alert');
    cleanup.push(() => sub.client.end(true));
    // npm start's config, with this test's broker instead of the embedded one and no live view;
    // phantom and alerts at the schema's defaults, read from the schema (testConfig's faster test settings
    // reset to them), then whatever npm-start.yaml sets
    const defaults = validateConfig({});
    const config = await testConfig(broker.url, {
      capture: { phantom: { ...defaults.capture.phantom } },
      alerts: { ...defaults.alerts },
      ...startYaml,
      liveView: { enabled: false },
    });
    expect(config.capture.source).toBe('phantom');
    // guards the spread above: were npm-start.yaml to set `capture`, the helper's test phantom would come back
    const startPhantom = (startYaml.capture as { phantom?: object } | undefined)?.phantom;
    expect(config.capture.phantom).toEqual({ ...defaults.capture.phantom, ...startPhantom });
    expect(config.alerts).toEqual(DEFAULT_TRACKER);
    const ph = config.capture.phantom;
    const frames = CYCLES * ph.cycleFrames;
    const d = await startDaemon(config);
    cleanup.push(() => d.stop());
    let lastSeq = 0;
    let cuts = 0;
    d.daemon.onResult((r) => {
      lastSeq = r.seq;
      if (r.imaging.viewChanged) cuts++;
    });
    await until(() => lastSeq >= frames, 120_000, `${frames} phantom frames`);
    await d.daemon.stop();
    await d.alerts.settled();
    await until(() => d.mqtt.outboxSize === 0, 20_000, 'outbox drained');
    await d.stop();
    // appearances from the phantom's own truth
    const g = new PhantomGenerator({
      ...DEFAULT_PHANTOM,
      seed: ph.seed,
      nodules: ph.nodules,
      cycleFrames: ph.cycleFrames,
      visibleFraction: ph.visibleFraction,
    });
    const apps: { start: number; end: number }[] = [];
    for (let i = 0; i < frames; i++) {
      const on = g.render(i).mask.some((v) => v > 0);
      const cur = apps.at(-1);
      if (on && cur && cur.end === i) cur.end = i + 1;
      else if (on) apps.push({ start: i + 1, end: i + 1 }); // seq = index + 1
    }
    const alerts = sub.messages
      .map((m) => JSON.parse(m.payload.toString()) as AlertPayload)
      .filter((a) => a.frameSeq <= frames);
    const detected = alerts.filter((a) => a.event === 'nodule_detected');
    const perApp = apps.map((a) => detected.filter((x) => x.frameSeq >= a.start && x.frameSeq <= a.end).length);
    const away = detected.filter((x) => !apps.some((a) => x.frameSeq >= a.start && x.frameSeq <= a.end)).length;
    const MEASURED = {
      appearances: apps.length,
      detectedPerAppearance: perApp,
      detectedWhileAway: away,
      tracksOpened: detected.length,
    };
    console.log(`phantom alerts, seed ${ph.seed}, ${CYCLES} cycles: ${JSON.stringify(MEASURED)}`);
    expect(apps.length).toBeGreaterThanOrEqual(CYCLES);
    expect(perApp.every((n) => n === 1)).toBe(true);
    expect(away).toBe(0);
    // the phantom's probe drifts and is lifted between appearances: never a cut to another scene
    expect(cuts).toBe(0);
  }, 240_000);
});
