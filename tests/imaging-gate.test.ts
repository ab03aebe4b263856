/** The imaging gate as pure logic: tissue, probe lifted (dark noise, reverberation bands), blank, frozen. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_GATE, frameStats, ImagingGate, noTissueReason } from '../src/inference/imaging-gate.js';
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

  it('reverberation: the gate reports why', () => {
    const s = feed(new ImagingGate(DEFAULT_GATE), [tissue(1), bands(2), bands(3), bands(4)]);
    expect(s.at(-1)).toMatchObject({ imaging: false, reason: 'reverberation', frameOk: false });
  });
});
