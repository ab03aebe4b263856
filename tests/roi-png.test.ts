/** The calibrate PNG: rectangles drawn on the full screen; served over the network, the rest pixelated. */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { OBSCURE_BLOCK, roiPng } from '../src/capture/roi-png.js';

const W = 64;
const H = 48;
const rect = { x: 8, y: 24, width: 40, height: 20 };

function screen(): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      // "patient name" strokes in the header rows, a gradient below
      data[y * W + x] = y < 16 ? ((x >> 1) % 2 ? 240 : 10) : 40 + x + y;
    }
  }
  return { width: W, height: H, data };
}

async function red(png: Buffer): Promise<Uint8Array> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  return Uint8Array.from({ length: W * H }, (_, i) => data[i * info.channels] as number);
}

describe('roiPng', () => {
  it('keeps the screen as it is for the CLI, and pixelates outside the rectangles for the live view', async () => {
    const s = screen();
    const rects = [{ rect, rgb: [255, 200, 0] as [number, number, number] }];
    const plain = await red(await roiPng(s, rects));
    expect(plain.subarray(0, W)).toEqual(s.data.subarray(0, W)); // the header strokes are there
    const hidden = await red(await roiPng(s, rects, true));
    expect(OBSCURE_BLOCK).toBe(16);
    // header blocks: one value each, their mean (the strokes are gone)
    for (let bx = 0; bx < W; bx += OBSCURE_BLOCK) {
      const block = new Set<number>();
      let sum = 0;
      for (let y = 0; y < 16; y++) {
        for (let x = bx; x < bx + 16; x++) {
          block.add(hidden[y * W + x] as number);
          sum += s.data[y * W + x] as number;
        }
      }
      expect([...block]).toEqual([Math.round(sum / 256)]);
    }
    // inside the rectangle (within its drawn 2 px border) every pixel is the screen's own
    for (let y = rect.y + 2; y < rect.y + rect.height - 2; y++)
      for (let x = rect.x + 2; x < rect.x + rect.width - 2; x++) expect(hidden[y * W + x]).toBe(s.data[y * W + x]);
    // and the border is drawn in the rectangle's colour
    expect(hidden[rect.y * W + rect.x + 5]).toBe(255);
  });
});
