/**
 * The alert service's logic with an in-memory sink and a hand-fed result stream (the real daemon
 * and broker are in alerts-crash / alerts-clip): persist before announcing, clears on config change,
 * restart recovery from the track store, ids that continue across instances.
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AlertService, type ResultFeed } from '../src/alerts/service.js';
import { validateConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import type { AlertPayload } from '../src/mqtt/payloads.js';
import type { FrameResult } from '../src/inference/frame-processor.js';
import type { Nodule } from '../src/inference/postprocess.js';
import { logger, tempDir } from './helpers/fixtures.js';

function nodule(x: number, y: number, r = 14): Nodule {
  const bbox = { x: x - r, y: y - r, width: 2 * r, height: 2 * r };
  return {
    id: 1,
    bbox,
    centroid: { x, y },
    areaPx: Math.round(3.1 * r * r),
    areaFraction: 0.01,
    areaMm2: null,
    meanProb: 0.8,
    maxProb: 0.9,
    capture: { bbox, centroid: { x, y } },
  };
}

class Feed implements ResultFeed {
  private l: ((r: FrameResult) => void) | null = null;
  seq = 0;
  onResult(l: (r: FrameResult) => void) {
    this.l = l;
    return () => (this.l = null);
  }
  push(nodules: Nodule[], imaging = true, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.seq++;
      const r = {
        seq: this.seq,
        capturedAt: 1_000_000 + this.seq * 66,
        width: 256,
        height: 256,
        nodules,
        imaging: {
          imaging,
          reason: imaging ? null : 'no_signal',
          frameOk: imaging,
          stats: { mean: 0, std: 0, brightFraction: 0, rowStructure: 0, diff: null },
        },
      };
      this.l?.(r as unknown as FrameResult);
    }
  }
}

/** A sink that records the order of "stored" and "heard" (listeners), and can be slow. */
function sink(order: string[], delayMs = 0) {
  const stored: AlertPayload[] = [];
  return {
    stored,
    store: async (a: AlertPayload) => {
      await new Promise((r) => setTimeout(r, delayMs));
      stored.push(a);
      order.push(`stored ${a.event}`);
    },
  };
}

async function config(stateDir: string, alerts: Record<string, unknown> = {}): Promise<Config> {
  return validateConfig({ stateDir, alerts });
}

describe('alert service', () => {
  it('stores (and persists the track) before anyone hears of an alert; config changes clear open tracks', async () => {
    const dir = await tempDir('te-alertsvc-');
    const order: string[] = [];
    const s1 = sink(order, 30);
    const svc = await AlertService.open(await config(dir), s1, logger);
    const feed = new Feed();
    svc.attach(feed);
    svc.onAlert((a) => order.push(`heard ${a.event}`));
    feed.push([nodule(100, 100)], true, 10);
    await svc.settled();
    expect(order).toEqual(['stored nodule_detected', 'heard nodule_detected']);
    const file = JSON.parse(await readFile(join(dir, 'alerts', 'tracks.json'), 'utf8'));
    expect(
      file.open.map((o: { detected: AlertPayload; announced: boolean }) => [o.detected.trackId, o.announced]),
    ).toEqual([[1, true]]);
    svc.applyConfig(await config(dir)); // same alerts settings: nothing happens
    svc.applyConfig(await config(dir, { memoryS: 3 }));
    await svc.settled();
    expect(s1.stored.map((a) => [a.event, a.reason ?? null])).toEqual([
      ['nodule_detected', null],
      ['nodule_cleared', 'config_changed'],
    ]);
    expect(JSON.parse(await readFile(join(dir, 'alerts', 'tracks.json'), 'utf8')).open).toEqual([]);
    await svc.stop();
  });

  it('after a crash: tracks clear (reason restart), unannounced detections stored again, ids continue', async () => {
    const dir = await tempDir('te-alertsvc-');
    const s1 = sink([]);
    const first = await AlertService.open(await config(dir), s1, logger);
    const feed = new Feed();
    first.attach(feed);
    feed.push([nodule(60, 60), nodule(200, 200)], true, 10);
    await first.settled();
    expect(s1.stored.map((a) => a.trackId)).toEqual([1, 2]);
    // the crash happened between writing track 2 to the store and storing its detection
    const path = join(dir, 'alerts', 'tracks.json');
    const st = JSON.parse(await readFile(path, 'utf8'));
    st.open[1].announced = false;
    await writeFile(path, JSON.stringify(st));
    // no stop(): the process died
    const s2 = sink([]);
    const second = await AlertService.open(await config(dir), s2, logger);
    expect(s2.stored.map((a) => [a.event, a.trackId, a.reason ?? null])).toEqual([
      ['nodule_cleared', 1, 'restart'],
      ['nodule_detected', 2, null],
      ['nodule_cleared', 2, 'restart'],
    ]);
    expect(s2.stored[1]!.messageId).toBe(s1.stored[1]!.messageId); // the same message: subscribers deduplicate
    const feed2 = new Feed();
    second.attach(feed2);
    feed2.push([nodule(120, 120)], true, 10);
    await second.settled();
    expect(s2.stored.at(-1)).toMatchObject({ event: 'nodule_detected', trackId: 3 });
    // a clean stop clears with reason shutdown; the next start has nothing to clear
    await second.stop();
    expect(s2.stored.at(-1)).toMatchObject({ event: 'nodule_cleared', trackId: 3, reason: 'shutdown' });
    const s3 = sink([]);
    await AlertService.open(await config(dir), s3, logger);
    expect(s3.stored).toEqual([]);
  });

  it('no imaging clears once; a corrupt track store is an error naming the file', async () => {
    const dir = await tempDir('te-alertsvc-');
    const s1 = sink([]);
    const svc = await AlertService.open(await config(dir), s1, logger);
    const feed = new Feed();
    svc.attach(feed);
    feed.push([nodule(100, 100)], true, 10);
    feed.push([nodule(100, 100)], false, 20);
    await svc.settled();
    expect(s1.stored.map((a) => [a.event, a.reason ?? null])).toEqual([
      ['nodule_detected', null],
      ['nodule_cleared', 'no_imaging'],
    ]);
    const bad = await tempDir('te-alertsvc-');
    await mkdir(join(bad, 'alerts'));
    await writeFile(join(bad, 'alerts', 'tracks.json'), '{"nextTrackId": "x"');
    await expect(AlertService.open(await config(bad), sink([]), logger)).rejects.toThrow(/tracks\.json: not JSON/);
  });
});
