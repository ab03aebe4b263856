import { describe, expect, it } from 'vitest';
import { labelComponents, logitOf, postprocess } from '../src/inference/postprocess.js';
import { decodeRle, encodeRle, encodePng } from '../src/inference/mask-encoding.js';
import sharp from 'sharp';

function logitsFrom(mask: number[][], inside = 4, outside = -4): Float32Array {
  return Float32Array.from(mask.flat().map((v) => (v ? inside : outside)));
}

function canvas(w: number, h: number): number[][] {
  return Array.from({ length: h }, () => Array.from({ length: w }, () => 0));
}

function fillRect(c: number[][], x: number, y: number, w: number, h: number): void {
  for (let j = y; j < y + h; j++) for (let i = x; i < x + w; i++) c[j]![i] = 1;
}

describe('post-processing', () => {
  it('finds two nodules, drops specks, maps coordinates back to the capture frame', () => {
    const c = canvas(40, 20);
    fillRect(c, 2, 3, 10, 6); // 60 px
    fillRect(c, 25, 10, 5, 4); // 20 px
    c[0]![39] = 1; // 1 px speck
    fillRect(c, 18, 17, 2, 2); // 4 px speck
    const roi = { x: 100, y: 50, width: 80, height: 40 }; // capture px = 2 x model px
    const r = postprocess(
      logitsFrom(c),
      { width: 40, height: 20, roi },
      { threshold: 0.5, minAreaPx: 10, pixelSpacingMm: { x: 0.1, y: 0.1 } },
    );
    expect(r.nodules).toHaveLength(2);
    const [big, small] = r.nodules;
    expect(big!.id).toBe(1);
    expect(big!.areaPx).toBe(60);
    expect(big!.bbox).toEqual({ x: 2, y: 3, width: 10, height: 6 });
    expect(big!.centroid).toEqual({ x: 6.5, y: 5.5 });
    expect(big!.areaFraction).toBeCloseTo(60 / 800);
    // 60 model px = 60 * 4 capture px = 240 * 0.01 mm^2
    expect(big!.areaMm2).toBeCloseTo(2.4);
    expect(big!.capture.bbox).toEqual({ x: 104, y: 56, width: 20, height: 12 });
    expect(big!.capture.centroid).toEqual({ x: 100 + 7 * 2, y: 50 + 6 * 2 });
    expect(small!.areaPx).toBe(20);
    expect(small!.capture.bbox).toEqual({ x: 150, y: 70, width: 10, height: 8 });
    // specks are gone from the mask too
    expect(r.mask.reduce((a, b) => a + b, 0)).toBe(80);
    expect(big!.meanProb).toBeCloseTo(1 / (1 + Math.exp(-4)));
  });

  it('uses the threshold on probabilities and 8-connectivity', () => {
    const logits = Float32Array.from([logitOf(0.6), logitOf(0.4), 0, logitOf(0.9)]);
    const r = postprocess(
      logits,
      { width: 2, height: 2, roi: { x: 0, y: 0, width: 2, height: 2 } },
      { threshold: 0.55, minAreaPx: 0 },
    );
    // (0,0) and (1,1) touch diagonally: one component
    expect(r.nodules).toHaveLength(1);
    expect(r.nodules[0]!.areaPx).toBe(2);
    expect(r.nodules[0]!.maxProb).toBeCloseTo(0.9);
    expect(r.nodules[0]!.areaMm2).toBeNull();
  });

  it('labels components without recursion limits', () => {
    const n = 512;
    const mask = new Uint8Array(n * n).fill(1);
    expect(labelComponents(mask, n, n).count).toBe(1);
  });
});

describe('mask encodings', () => {
  it('RLE is COCO column-major and round-trips', () => {
    // 3x2 (w x h): column-major order is (0,0),(0,1),(1,0),(1,1),(2,0),(2,1)
    const mask = Uint8Array.from([0, 1, 1, 1, 0, 0]); // rows: [0,1,1] / [1,0,0]
    const rle = encodeRle(mask, 3, 2);
    // column-major sequence: 0,1 | 1,0 | 1,0 -> runs 0x1, 1x2, 0x1, 1x1, 0x1
    expect(rle).toEqual({ size: [2, 3], counts: [1, 2, 1, 1, 1] });
    expect(Array.from(decodeRle(rle))).toEqual(Array.from(mask));
    const random = Uint8Array.from({ length: 37 * 23 }, (_, i) => ((i * 7919) % 13 < 5 ? 1 : 0));
    expect(Array.from(decodeRle(encodeRle(random, 37, 23)))).toEqual(Array.from(random));
  });

  it('an RLE that starts with a nodule pixel begins with a zero-length run', () => {
    expect(encodeRle(Uint8Array.from([1, 1]), 1, 2).counts).toEqual([0, 2]);
  });

  it('PNG is single-channel 0/255 at the mask size', async () => {
    const png = await encodePng(Uint8Array.from([0, 1, 1, 0]), 2, 2);
    const meta = await sharp(png).metadata();
    expect(meta.channels).toBe(1);
    const raw = await sharp(png).greyscale().raw().toBuffer();
    expect(Array.from(raw)).toEqual([0, 255, 255, 0]);
  });
});
