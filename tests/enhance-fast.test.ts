/** The "tiles" enhancement (binomial blur + tile-interpolated CLAHE) on crafted frames with known answers. */
import { describe, expect, it } from 'vitest';
import { enhance } from '../src/inference/preprocess.js';
import { gaussianBlur, tileClahe } from '../src/inference/enhance-fast.js';
import { mulberry32 } from '../src/capture/phantom.js';
import { SMALL_SPEC } from './helpers/fixtures.js';

describe('binomial Gaussian blur', () => {
  it('keeps a flat frame flat and spreads an impulse as the 5x5 binomial kernel', () => {
    expect(gaussianBlur(new Uint8Array(64).fill(77), 8, 8, 1).every((v) => v === 77)).toBe(true);
    const img = new Uint8Array(15 * 15);
    img[7 * 15 + 7] = 255;
    const out = gaussianBlur(img, 15, 15, 1);
    // centre weight 6*6/256 of 255 = 35.86 -> 36; next ring 4*6/256 -> 23.9 -> 24; corner of the 5x5 1/256 -> 1
    expect(out[7 * 15 + 7]).toBe(36);
    expect(out[7 * 15 + 8]).toBe(24);
    expect(out[5 * 15 + 5]).toBe(1);
    expect(out[4 * 15 + 4]).toBe(0);
    // symmetric
    expect(out[7 * 15 + 6]).toBe(out[6 * 15 + 7]);
  });

  it('one pass equals the kernel definition at every pixel, reflected edges and frames 1-9 px wide included', () => {
    // symmetric reflection with the edge pixel repeated (-1 -> 0, n -> n-1), as the blur documents
    const reflect = (i: number, n: number) => {
      const m = ((i % (2 * n)) + 2 * n) % (2 * n);
      return m < n ? m : 2 * n - 1 - m;
    };
    const k = [1, 4, 6, 4, 1];
    const rnd = mulberry32(7);
    for (const [w, h] of [
      [1, 1],
      [2, 3],
      [3, 2],
      [4, 4],
      [5, 6],
      [6, 5],
      [9, 7],
      [17, 3],
    ] as const) {
      const img = Uint8Array.from({ length: w * h }, () => Math.floor(rnd() * 256));
      // horizontal sums (exact integers), then vertical, rounded once
      const rows = Array.from({ length: w * h }, (_, i) => {
        const [x, y] = [i % w, Math.floor(i / w)];
        return k.reduce((s, c, t) => s + c * img[y * w + reflect(x + t - 2, w)]!, 0);
      });
      const want = rows.map((_, i) => {
        const [x, y] = [i % w, Math.floor(i / w)];
        return (k.reduce((s, c, t) => s + c * rows[reflect(y + t - 2, h) * w + x]!, 0) + 128) >> 8;
      });
      expect([...gaussianBlur(img, w, h, 1)], `${w}x${h}`).toEqual(want);
    }
  });

  it('sigma 2 runs four passes (variance 4): wider than sigma 1', () => {
    const img = new Uint8Array(21 * 21);
    img[10 * 21 + 10] = 255;
    const s1 = gaussianBlur(img, 21, 21, 1);
    const s2 = gaussianBlur(img, 21, 21, 2);
    expect(s2[10 * 21 + 10]!).toBeLessThan(s1[10 * 21 + 10]!);
    expect(s2[10 * 21 + 14]!).toBeGreaterThan(0);
    expect(s1[10 * 21 + 14]!).toBe(0);
  });
});

describe('tile-interpolated CLAHE', () => {
  it('one tile, no clip: plain histogram equalisation (two levels -> 128 and 255)', () => {
    const img = new Uint8Array(16 * 16);
    for (let i = 0; i < img.length; i++) img[i] = i < 128 ? 40 : 200;
    const out = tileClahe(img, 16, 16, { tileWidth: 16, tileHeight: 16, maxSlope: 0 });
    expect(out[0]).toBe(128);
    expect(out[200]).toBe(255);
  });

  it('a flat frame maps to one value everywhere; the clip limits the boost', () => {
    const flat = tileClahe(new Uint8Array(64 * 64).fill(90), 64, 64, { tileWidth: 16, tileHeight: 16, maxSlope: 3 });
    expect(new Set(flat).size).toBe(1);
    // clip 3 x mean count: a flat tile keeps 3/256 of its mass in its bin, the rest spread evenly
    const v = flat[0]!;
    expect(v).toBeGreaterThan(90);
    expect(v).toBeLessThan(255);
  });

  it('monotonic within a tile and continuous across tile borders (bilinear blend)', () => {
    const w = 64;
    const img = new Uint8Array(w * w);
    for (let y = 0; y < w; y++) for (let x = 0; x < w; x++) img[y * w + x] = x * 2 + y; // a smooth ramp (0..189)
    const out = tileClahe(img, w, w, { tileWidth: 32, tileHeight: 32, maxSlope: 3 });
    let maxStep = 0;
    for (let y = 0; y < w; y++)
      for (let x = 1; x < w; x++) maxStep = Math.max(maxStep, Math.abs(out[y * w + x]! - out[y * w + x - 1]!));
    expect(maxStep).toBeLessThan(20); // no seams between tiles
    const row = Array.from(out.subarray(0, 16)); // one tile, increasing input
    expect(row.every((v, i) => i === 0 || v >= row[i - 1]!)).toBe(true);
  });

  it('enhance() runs it when the card says method "tiles"', async () => {
    const spec = { ...SMALL_SPEC, clahe: { ...SMALL_SPEC.clahe, method: 'tiles' as const } };
    const data = new Uint8Array(64 * 64);
    for (let i = 0; i < data.length; i++) data[i] = (i * 37) % 251;
    const got = await enhance({ width: 64, height: 64, data }, spec);
    const want = tileClahe(gaussianBlur(data, 64, 64, spec.gaussianSigma), 64, 64, spec.clahe);
    expect(Buffer.from(got.data).equals(Buffer.from(want))).toBe(true);
  });
});
