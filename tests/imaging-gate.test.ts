/** The imaging gate as pure logic: tissue, probe lifted (dark noise, reverberation bands), blank, frozen. */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_GATE,
  frameStats,
  ImagingGate,
  noTissueReason,
  structureChange,
} from '../src/inference/imaging-gate.js';
import { mulberry32 } from '../src/capture/phantom.js';

const S = 128;

function frame(fn: (x: number, y: number) => number): Uint8Array {
  const d = new Uint8Array(S * S);
  for (let y = 0; y < S; y++)
    for (let x = 0; x < S; x++) d[y * S + x] = Math.max(0, Math.min(255, Math.round(fn(x, y))));
  return d;
}

/** speckled tissue: a bright band of fascia, a darker nodule, multiplicative speckle drawn fresh each call */
function tissue(seed: number): Uint8Array {
  const r = mulberry32(seed);
  return frame(
    (x, y) => (70 + (Math.abs(y - 30) < 4 ? 60 : 0) - (Math.hypot(x - 64, y - 70) < 18 ? 35 : 0)) * (0.4 + 1.2 * r()),
  );
}
const darkNoise = (seed: number) => {
  const r = mulberry32(seed);
  return frame(() => 4 + 14 * r());
};
/** a lifted probe with strong reverberation: bright horizontal bands over dark noise */
const bands = (seed: number) => {
  const r = mulberry32(seed);
  return frame((_, y) => (y % 16 < 4 ? 150 : 8) + 6 * r());
};

/**
 * A scene of tissue larger than the screen: smooth structures (tens of px) that the probe's view, shifted
 * by dx, shows a part of; `gain` scales it; speckle is drawn fresh every frame.
 */
function scene(seed: number, dx = 0, gain = 1, speckle = seed * 1000 + dx): Uint8Array {
  const p = mulberry32(seed);
  const [a, b, c, d] = [p() * 6.28, p() * 6.28, 9 + p() * 8, 11 + p() * 8];
  const r = mulberry32(speckle);
  return frame(
    (x, y) =>
      gain *
      (80 + 40 * Math.sin((x + dx) / c + a) * Math.cos(y / d + b) + 25 * Math.sin((x + dx + y) / 23)) *
      (0.7 + 0.6 * r()),
  );
}

/** scene(seed) as a depth or zoom change on the scanner shows it: rescaled about the top centre (> 1 magnifies) */
function rescaledScene(seed: number, scale: number, speckle = seed * 7919): Uint8Array {
  const p = mulberry32(seed);
  const [a, b, c, d] = [p() * 6.28, p() * 6.28, 9 + p() * 8, 11 + p() * 8];
  const r = mulberry32(speckle);
  return frame((px, py) => {
    const [x, y] = [S / 2 + (px - S / 2) / scale, py / scale];
    return (80 + 40 * Math.sin(x / c + a) * Math.cos(y / d + b) + 25 * Math.sin((x + y) / 23)) * (0.7 + 0.6 * r());
  });
}

function feed(g: ImagingGate, frames: Uint8Array[], t0 = 0) {
  return frames.map((f, i) => g.update(f, S, S, t0 + i * 66));
}

describe('imaging gate', () => {
  it('frame statistics: mean, std, bright fraction, row structure, difference', () => {
    const o = { centralFraction: 1, brightLevel: 60 };
    const stripesH = frame((_, y) => (y % 2 ? 200 : 0));
    const stripesV = frame((x) => (x % 2 ? 200 : 0));
    const h = frameStats(stripesH, S, S, o);
    expect(h.mean).toBeCloseTo(100, 5);
    expect(h.std).toBeCloseTo(100, 5);
    expect(h.brightFraction).toBeCloseTo(0.5, 5);
    expect(h.rowStructure).toBeCloseTo(1, 5); // all variance between rows
    expect(frameStats(stripesV, S, S, o).rowStructure).toBeCloseTo(0, 5); // all within rows
    expect(frameStats(stripesV, S, S, o, stripesH).diff).toBeCloseTo(100, 5);
    expect(frameStats(new Uint8Array(S * S), S, S, o).rowStructure).toBe(0); // blank: no structure, no NaN
  });

  it('classifies single frames: tissue, dark noise, reverberation bands, blank', () => {
    const st = (d: Uint8Array) => frameStats(d, S, S, DEFAULT_GATE);
    expect(noTissueReason(st(tissue(1)), DEFAULT_GATE)).toBeNull();
    expect(noTissueReason(st(darkNoise(1)), DEFAULT_GATE)).toBe('no_signal');
    expect(noTissueReason(st(bands(1)), DEFAULT_GATE)).toBe('reverberation');
    expect(noTissueReason(st(new Uint8Array(S * S)), DEFAULT_GATE)).toBe('no_signal');
    // saturated is a (bad) image, not no-tissue
    expect(noTissueReason(st(new Uint8Array(S * S).fill(255)), DEFAULT_GATE)).toBe(null);
  });

  it('turns off after offFrames bad frames, back on after onFrames good ones; bad frames are flagged at once', () => {
    const g = new ImagingGate(DEFAULT_GATE);
    const s = feed(g, [
      tissue(1),
      tissue(2),
      darkNoise(3),
      darkNoise(4),
      darkNoise(5),
      tissue(6),
      tissue(7),
      tissue(8),
      tissue(9),
    ]);
    expect(s.map((x) => x.imaging)).toEqual([true, true, true, false, false, false, false, true, true]);
    expect(s.map((x) => x.frameOk)).toEqual([true, true, false, false, false, true, true, true, true]);
    expect(s[3]!.reason).toBe('no_signal');
    const one = feed(new ImagingGate(DEFAULT_GATE), [tissue(1), darkNoise(2), tissue(3)]); // one bad frame: state stays
    expect(one.map((x) => x.imaging)).toEqual([true, true, true]);
    expect(one[1]!.frameOk).toBe(false);
  });

  it('a frozen image (identical frames) turns imaging off after frozenMs; a live image turns it back on', () => {
    const g = new ImagingGate({ ...DEFAULT_GATE, frozenMs: 400 });
    const still = tissue(5);
    const s = feed(g, [
      tissue(1),
      ...Array.from({ length: 12 }, () => still),
      tissue(2),
      tissue(3),
      tissue(4),
      tissue(6),
    ]);
    // frames 2.. are the same: unchanged frames are no evidence at once; frozen after 400 ms (+ offFrames)
    expect(s[2]!.frameOk).toBe(false);
    expect(s[2]!.imaging).toBe(true);
    const firstOff = s.findIndex((x) => !x.imaging);
    expect(firstOff).toBeGreaterThan(2);
    expect(s[firstOff]!.reason).toBe('frozen');
    expect((firstOff - 2) * 66).toBeGreaterThanOrEqual(400);
    expect((firstOff - 2) * 66).toBeLessThan(400 + 3 * 66);
    expect(s.at(-1)!.imaging).toBe(true);
  });

  it('a moving probe or a gain change is no cut; another scene is, once', () => {
    const pan = Array.from({ length: 12 }, (_, i) => scene(1, 2 * i));
    const gains = [0.8, 0.6, 0.9].map((g, i) => scene(1, 24, g, 77 + i));
    const other = Array.from({ length: 4 }, (_, i) => scene(2, 2 * i));
    const s = feed(new ImagingGate(DEFAULT_GATE), [...pan, ...gains, ...other]);
    expect(s.every((x) => x.imaging && x.frameOk)).toBe(true);
    expect(s[0]!.structureChange).toBeNull(); // nothing to compare with yet
    const moving = s.slice(1, pan.length + gains.length);
    expect(Math.max(...moving.map((x) => x.structureChange!))).toBeLessThan(0.1);
    expect(s.map((x) => x.viewChanged)).toEqual(s.map((_, i) => i === pan.length + gains.length));
    expect(s[pan.length + gains.length]!.structureChange).toBeGreaterThan(DEFAULT_GATE.viewChangeLevel);
    // the statistic alone: a scene against itself shifted, and against another scene
    const st = (f: Uint8Array) => frameStats(f, S, S, DEFAULT_GATE).blocks;
    expect(structureChange(st(scene(3)), st(scene(3, 3)))).toBeLessThan(0.1);
    expect(structureChange(st(scene(3)), st(scene(4)))).toBeGreaterThan(0.25);
  });

  it('a dark blip between two frames of one scene is no cut; after a lifted probe there is no reference', () => {
    const blip = feed(new ImagingGate(DEFAULT_GATE), [scene(1), scene(1, 2), darkNoise(5), scene(1, 4), scene(1, 6)]);
    expect(blip[2]).toMatchObject({ imaging: true, frameOk: false, structureChange: null, viewChanged: false });
    expect(blip.map((x) => x.viewChanged)).toEqual([false, false, false, false, false]);
    // lifted long enough to turn the gate off: the tracks are gone already, so the new scene is no cut
    const lifted = feed(new ImagingGate(DEFAULT_GATE), [
      scene(1),
      scene(1, 2),
      ...[5, 6, 7].map(darkNoise),
      ...[0, 2, 4, 6].map((dx) => scene(2, dx)),
    ]);
    expect(lifted.some((x) => x.viewChanged)).toBe(false);
    expect(lifted.at(-1)!.imaging).toBe(true);
    // viewChangeLevel 2 turns the cut off
    const off = feed(new ImagingGate({ ...DEFAULT_GATE, viewChangeLevel: 2 }), [scene(1), scene(2)]);
    expect(off[1]!.viewChanged).toBe(false);
  });

  it('a depth or zoom change (the picture rescaled about the probe face) is no cut; another scene still is', () => {
    for (const scale of [1.43, 0.7]) {
      const s = feed(new ImagingGate(DEFAULT_GATE), [
        rescaledScene(1, 1, 1),
        rescaledScene(1, 1, 2),
        rescaledScene(1, scale, 3),
        rescaledScene(1, scale, 4),
      ]);
      // the plain statistic calls it a cut; the rescaled reference explains it
      expect(s[2]!.structureChange).toBeGreaterThan(DEFAULT_GATE.viewChangeLevel);
      expect(s.map((x) => x.viewChanged)).toEqual([false, false, false, false]);
      expect(s.map((x) => x.rescaled)).toEqual([null, null, scale, null]);
      // without rescales tried it is a cut, as before
      const plain = feed(new ImagingGate({ ...DEFAULT_GATE, viewRescales: [] }), [
        rescaledScene(1, 1, 1),
        rescaledScene(1, scale, 3),
      ]);
      expect(plain[1]).toMatchObject({ viewChanged: true, rescaled: null });
    }
    // another scene, at any of the scales tried, is still a cut
    for (const scale of [1, ...DEFAULT_GATE.viewRescales]) {
      const cut = feed(new ImagingGate(DEFAULT_GATE), [rescaledScene(1, 1), rescaledScene(2, scale)]);
      expect(cut[1]).toMatchObject({ viewChanged: true, rescaled: null });
    }
  });

  it('reverberation: the gate reports why', () => {
    const s = feed(new ImagingGate(DEFAULT_GATE), [tissue(1), bands(2), bands(3), bands(4)]);
    expect(s.at(-1)).toMatchObject({ imaging: false, reason: 'reverberation', frameOk: false });
  });
});
