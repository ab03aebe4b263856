/** The phantom: determinism, anatomy and ground truth, appearances, statistics against DDTI, cost. */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { findImagingArea } from '../src/capture/calibrate.js';
import type { Frame, FrameSource } from '../src/capture/frame-source.js';
import { distanceTo } from '../src/capture/phantom-fields.js';
import { PhantomSource } from '../src/capture/phantom-source.js';
import { DEFAULT_PHANTOM, PhantomGenerator } from '../src/capture/phantom.js';
import lobeStats from '../src/capture/lobe-stats.json' with { type: 'json' };
import measured from '../src/capture/phantom-stats.json' with { type: 'json' };
import { lobeContrast, phantomLobeContrast } from '../src/tools/lobe-contrast.js';
import { measureTg3k } from '../src/tools/measure-lobe-contrast.js';
import { measureDataset, measurePhantom } from '../src/tools/measure-ultrasound-stats.js';
import { frameStats } from '../src/tools/ultrasound-stats.js';
import { SMALL_SPEC } from './helpers/fixtures.js';

const DDTI = '../shared/datasets/ddti';
const TG3K = '../shared/datasets/tg3k';

async function take(src: FrameSource, n: number): Promise<Frame[]> {
  const out: Frame[] = [];
  for await (const f of src.frames()) {
    out.push(f);
    if (out.length >= n) break;
  }
  await src.stop();
  return out;
}

/** The ROI mask placed on the full screen (for frameStats). */
function screenMask(mask: Uint8Array, o = DEFAULT_PHANTOM): Uint8Array {
  const m = new Uint8Array(o.screenWidth * o.screenHeight);
  for (let y = 0; y < o.roi.height; y++)
    m.set(mask.subarray(y * o.roi.width, (y + 1) * o.roi.width), (o.roi.y + y) * o.screenWidth + o.roi.x);
  return m;
}

describe('phantom', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = new PhantomGenerator({ ...DEFAULT_PHANTOM, seed: 5 }).render(3);
    const b = new PhantomGenerator({ ...DEFAULT_PHANTOM, seed: 5 }).render(3);
    const c = new PhantomGenerator({ ...DEFAULT_PHANTOM, seed: 6 }).render(3);
    expect(Buffer.from(a.screen).equals(Buffer.from(b.screen))).toBe(true);
    expect(Buffer.from(a.screen).equals(Buffer.from(c.screen))).toBe(false);
    expect(Buffer.from(a.mask).equals(Buffer.from(b.mask))).toBe(true);
    expect(a.nodules).toEqual(b.nodules);
  });

  it('draws a header band outside the ROI and a hypoechoic nodule with a darker halo inside it, which drifts', () => {
    const o = { ...DEFAULT_PHANTOM, nodules: 1 };
    for (const seed of [1, 2, 3]) {
      const g = new PhantomGenerator({ ...o, seed });
      const f0 = g.render(0);
      const f50 = g.render(50);
      const headerLit = f0.screen.subarray(0, o.screenWidth * o.roi.y).filter((v) => v > 200).length;
      expect(headerLit).toBeGreaterThan(500); // the pseudo-text
      const area = f0.mask.reduce((a, b) => a + b, 0);
      expect(area / f0.mask.length).toBeGreaterThan(0.01);
      expect(f0.nodules).toHaveLength(1);
      expect(f0.nodules[0]?.areaPx).toBe(area);
      // measured the way DDTI was: nodule interior and the 1..4 px band around it against the parenchyma 8..24 px out
      const s = frameStats(f0.screen, screenMask(f0.mask), o.screenWidth, o.screenHeight, o.roi);
      expect(s).not.toBeNull();
      expect(s!.noduleRatio).toBeLessThan(0.95); // hypoechoic, not anechoic
      expect(s!.noduleRatio).toBeGreaterThan(0.4);
      // a darker rim around it, against the lobe's own parenchyma 8..24 px out (frameStats' surround may leave the
      // lobe, whose surroundings are darker than it, as on real scans)
      const { width: w, height: h } = o.roi;
      const lobe = g.lobe(0);
      const toNodule = distanceTo(w, h, (i) => f0.mask[i] === 1);
      const roiGrey = (i: number) => f0.screen[(o.roi.y + Math.floor(i / w)) * o.screenWidth + o.roi.x + (i % w)]!;
      let rim = 0;
      let nRim = 0;
      let par = 0;
      let nPar = 0;
      for (let i = 0; i < w * h; i++) {
        const d = toNodule[i]!;
        if (d > 0.5 && d <= 4) {
          rim += roiGrey(i);
          nRim++;
        } else if (d > 8 && d <= 24 && lobe[i]) {
          par += roiGrey(i);
          nPar++;
        }
      }
      expect(rim / nRim / (par / nPar)).toBeLessThan(1);
      expect(Buffer.from(f0.mask).equals(Buffer.from(f50.mask))).toBe(false); // the view moved
    }
  });

  it('nodules appear and clear on the configured cycle, growing in and shrinking out, numbered by appearance', () => {
    const g = new PhantomGenerator({ ...DEFAULT_PHANTOM, nodules: 1, cycleFrames: 10, visibleFraction: 0.5 });
    const frames = Array.from({ length: 20 }, (_, i) => g.render(i));
    expect(frames.map((f) => f.visible)).toEqual([1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
    expect(frames.map((f) => f.nodules[0]?.appearance ?? -1)).toEqual([
      0, 0, 0, 0, 0, -1, -1, -1, -1, -1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1,
    ]);
    for (const f of frames) expect(f.mask.reduce((a, b) => a + b, 0)).toBe(f.nodules[0]?.areaPx ?? 0);
    const areas = frames.slice(0, 5).map((f) => f.nodules[0]!.areaPx);
    expect(areas[2]!).toBeGreaterThan(areas[0]!); // the cross-section peaks mid-appearance
    expect(areas[2]!).toBeGreaterThan(areas[4]!);
    expect(areas[0]! / areas[2]!).toBeGreaterThan(0.2); // it enters at a visible size
  });

  it('with the defaults most frames show no nodule, and those have an empty truth', () => {
    const g = new PhantomGenerator({ ...DEFAULT_PHANTOM, nodules: 1, cycleFrames: 150 });
    const visible = Array.from({ length: 150 }, (_, i) => g.schedule(i).length);
    const empty = visible.filter((v) => v === 0).length;
    expect(empty / 150).toBeGreaterThan(0.5);
    const f = g.render(visible.indexOf(0));
    expect(f.visible).toBe(0);
    expect(f.mask.every((v) => v === 0)).toBe(true);
  });

  it('two nodules each keep their own id and appearances', () => {
    const g = new PhantomGenerator({ ...DEFAULT_PHANTOM, nodules: 2, cycleFrames: 20, visibleFraction: 0.3 });
    const seen = new Map<number, Set<number>>();
    for (let i = 0; i < 60; i++)
      for (const n of g.render(i).nodules) (seen.get(n.id) ?? seen.set(n.id, new Set()).get(n.id)!).add(n.appearance);
    expect([...seen.keys()].sort()).toEqual([0, 1]);
    expect([...seen.get(0)!].sort()).toEqual([0, 1, 2]);
    expect([...seen.get(1)!].sort()).toEqual([0, 1, 2]);
  });

  it('as a source yields ROI frames at the model size with ground truth, sequence and timestamps', async () => {
    const src = new PhantomSource({ ...DEFAULT_PHANTOM, fps: 0, maxFrames: 3 }, SMALL_SPEC);
    const frames = await take(src, 5);
    expect(frames.map((f) => f.seq)).toEqual([1, 2, 3]);
    for (const f of frames) {
      expect(f.data.length).toBe(64 * 64);
      expect(f.truth?.length).toBe(64 * 64);
      expect(f.truth!.some((v) => v === 1)).toBe(true);
      expect(f.roi).toEqual(DEFAULT_PHANTOM.roi);
      expect(f.capturedAt).toBeGreaterThan(Date.now() - 60_000);
    }
    expect(src.status().state).toBe('stopped');
    // the schedule is the same ground truth, without rendering
    const cyc = new PhantomSource(
      { ...DEFAULT_PHANTOM, cycleFrames: 10, visibleFraction: 0.5, fps: 0, maxFrames: 0 },
      SMALL_SPEC,
    );
    expect([0, 4, 5, 10].map((i) => cyc.schedule(i).map((n) => n.appearance))).toEqual([[0], [0], [], [1]]);
    expect((await cyc.renderFrame(5)).truth!.every((v) => v === 0)).toBe(true);
  });

  it('calibrate finds the phantom imaging area below the header', () => {
    for (const seed of [1, 2, 3]) {
      const g = new PhantomGenerator({ ...DEFAULT_PHANTOM, seed, nodules: 1 });
      const r = findImagingArea(g.render(0).screen, DEFAULT_PHANTOM.screenWidth, DEFAULT_PHANTOM.screenHeight);
      const t = DEFAULT_PHANTOM.roi;
      expect(r.y).toBeGreaterThanOrEqual(t.y - 2);
      expect(Math.abs(r.x - t.x)).toBeLessThanOrEqual(3);
      expect(Math.abs(r.width - t.width)).toBeLessThanOrEqual(6);
      expect(r.height).toBeGreaterThan(t.height * 0.75);
      expect(r.y + r.height).toBeLessThanOrEqual(t.y + t.height + 2);
    }
  });

  it('its image statistics fall inside the spread measured on DDTI train frames (phantom-stats.json)', () => {
    const ph = measurePhantom(3, [1, 2, 3]);
    const ddti = measured.stats;
    for (const k of [
      'areaMean',
      'areaP50',
      'areaP95',
      'speckleCvSurround',
      'speckleCvNodule',
      'textureFine',
      'textureMid',
      'textureCoarse',
      'textureMidNodule',
      'textureCoarseNodule',
      'corrLengthX',
      'corrLengthY',
      'noduleRatio',
      'haloRatio',
      'noduleDepth',
    ] as const) {
      const p = ph[k].p50;
      expect(p, `${k}: phantom ${p}, DDTI ${ddti[k].p10}..${ddti[k].p90}`).toBeGreaterThanOrEqual(ddti[k].p10);
      expect(p, `${k}: phantom ${p}, DDTI ${ddti[k].p10}..${ddti[k].p90}`).toBeLessThanOrEqual(ddti[k].p90);
    }
    for (const [b, s] of ph.depthProfile.entries())
      expect(Math.abs(s.p50 - ddti.depthProfile[b]!.p50)).toBeLessThan(0.15);
  });

  it("its lobe stands out from its surroundings as real lobes do (TG3K's gland masks, lobe-stats.json)", async () => {
    // drawn at the level of soft tissue, the lobe read 1.30 against TG3K's 1.51: a dark lobe reads as a mass
    const seeds = Array.from({ length: 12 }, (_, k) => k + 1);
    const ph = (await phantomLobeContrast(seeds)).sort((a, b) => a - b);
    expect(ph).toHaveLength(12);
    const { p10, p50, p90 } = lobeStats.lobeContrast;
    const median = ((ph[5] as number) + (ph[6] as number)) / 2;
    expect(Math.abs(median - p50), `phantom median ${median}, TG3K ${p50}`).toBeLessThan(0.05);
    for (const v of ph) {
      expect(v).toBeGreaterThanOrEqual(p10);
      expect(v).toBeLessThanOrEqual(p90);
    }
  });

  it("draws nodules of DDTI's size: the lobe grows to hold a large one instead of shrinking it", () => {
    // before, the lobe capped every nodule at under 9 % of the imaging area (median 6 %), where DDTI's median
    // is 11 %; the model over-outlines small nodules on DDTI val as on the phantom
    const { roi } = DEFAULT_PHANTOM;
    const fractions = Array.from({ length: 12 }, (_, k) => {
      const f = new PhantomGenerator({ ...DEFAULT_PHANTOM, seed: k + 1, nodules: 1 }).render(0);
      return (f.nodules[0]?.areaPx ?? 0) / (roi.width * roi.height);
    }).sort((a, b) => a - b);
    const median = ((fractions[5] as number) + (fractions[6] as number)) / 2;
    const { p10, p50, p90 } = measured.stats.noduleAreaFraction;
    expect(median, `median ${median}, DDTI p50 ${p50}`).toBeGreaterThan(0.75 * p50);
    expect(median).toBeLessThan(1.33 * p50);
    expect(fractions[0]).toBeGreaterThanOrEqual(0.8 * p10);
    expect(fractions[11]).toBeLessThanOrEqual(p90);
    expect(fractions[11]).toBeGreaterThan(0.15); // large nodules exist, not only mid-sized ones
  });

  it('renders fast enough for 30 fps on one core', () => {
    const g = new PhantomGenerator({ ...DEFAULT_PHANTOM, nodules: 2, cycleFrames: 60 });
    for (let i = 0; i < 10; i++) g.render(i); // warm-up
    // CPU time, not wall time: "on one core" is what it claims, and on a shared machine wall time
    // also counts the time other work held the core
    const cpu = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
    const t0 = cpu();
    const n = 60;
    for (let i = 0; i < n; i++) g.render(i);
    const ms = (cpu() - t0) / n;
    console.log(
      `phantom render: ${ms.toFixed(1)} ms/frame (${DEFAULT_PHANTOM.screenWidth}x${DEFAULT_PHANTOM.screenHeight})`,
    );
    expect(ms).toBeLessThan(1000 / 30);
  });
});

describe('measure-ultrasound-stats', () => {
  it('refuses the test split', async () => {
    await expect(measureDataset(DDTI, 'test', 1, true)).rejects.toThrow(/test split/);
  });

  it.skipIf(!existsSync(`${DDTI}/split.json`))(
    'measures DDTI train frames into per-statistic spreads (skips without ../shared)',
    async () => {
      const m = await measureDataset(DDTI, 'train', 6, true);
      expect(m.split).toBe('train');
      expect(m.frames).toBeGreaterThan(3);
      expect(m.stats.areaMean.p10).toBeLessThanOrEqual(m.stats.areaMean.p50);
      expect(m.stats.areaMean.p50).toBeLessThanOrEqual(m.stats.areaMean.p90);
      expect(m.stats.speckleCvSurround.p50).toBeGreaterThan(0.05);
      expect(m.stats.speckleCvSurround.p50).toBeLessThan(0.6);
      expect(m.stats.depthProfile).toHaveLength(10);
      expect(m.stats.corrLengthX.p50).toBeGreaterThan(m.stats.corrLengthY.p50); // speckle is wider across the beam
    },
  );
});

describe('measure-lobe-contrast', () => {
  it('lobe contrast: core over ring, near-black pixels left out', () => {
    // a 64x64 frame: a 30x30 lobe at grey 150 in tissue at 100, a black bar along the top that must not count
    const w = 64;
    const grey = new Uint8Array(w * w).fill(100);
    const lobe = new Uint8Array(w * w);
    for (let y = 17; y < 47; y++) {
      for (let x = 17; x < 47; x++) {
        grey[y * w + x] = 150;
        lobe[y * w + x] = 1;
      }
    }
    for (let i = 0; i < w * 4; i++) grey[i] = 0;
    expect(lobeContrast(grey, lobe, w, w)).toBeCloseTo(1.5, 6);
    expect(lobeContrast(grey, new Uint8Array(w * w), w, w)).toBeNull(); // no lobe: nothing to measure
  });

  it.skipIf(!existsSync(`${TG3K}/index.csv`))(
    'measures TG3K val frames into the committed spread (skips without ../shared)',
    async () => {
      const m = await measureTg3k(TG3K);
      expect(m.frames).toBe(lobeStats.frames);
      expect(m.lobeContrast).toEqual(lobeStats.lobeContrast);
    },
  );
});
