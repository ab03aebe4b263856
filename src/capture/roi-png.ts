/** A full capture frame as PNG with rectangles drawn on it (calibrate CLI and the live view's calibrate page). */
import sharp from 'sharp';
import type { Rect } from './frame-source.js';
import type { FullFrame } from './grab.js';

export interface DrawnRect {
  rect: Rect;
  rgb: [number, number, number];
}

/** Block size (px) of the pixelation outside the rectangles: text of any usual screen font becomes unreadable. */
export const OBSCURE_BLOCK = 16;
/** How far (px) past each rectangle the screen stays sharp, so an edge that the rectangle misses can be seen. */
const SHARP_MARGIN = 4;

/**
 * `obscureOutside`: everything more than a few pixels outside the rectangles is pixelated, so the header with the
 * patient's name and ID is not readable in a view served over the network, while the screen's layout still is.
 */
export async function roiPng(full: FullFrame, rects: DrawnRect[], obscureOutside = false): Promise<Buffer> {
  const grey = obscureOutside
    ? pixelateOutside(
        full,
        rects.map((r) => r.rect),
      )
    : full.data;
  const rgb = Buffer.alloc(full.width * full.height * 3);
  for (let i = 0; i < full.width * full.height; i++) rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = grey[i] as number;
  for (const {
    rect,
    rgb: [r, g, b],
  } of rects) {
    const paint = (x: number, y: number) => {
      if (x < 0 || y < 0 || x >= full.width || y >= full.height) return;
      const i = (y * full.width + x) * 3;
      rgb[i] = r;
      rgb[i + 1] = g;
      rgb[i + 2] = b;
    };
    for (let t = 0; t < 2; t++) {
      for (let x = rect.x; x < rect.x + rect.width; x++) {
        paint(x, rect.y + t);
        paint(x, rect.y + rect.height - 1 - t);
      }
      for (let y = rect.y; y < rect.y + rect.height; y++) {
        paint(rect.x + t, y);
        paint(rect.x + rect.width - 1 - t, y);
      }
    }
  }
  return sharp(rgb, { raw: { width: full.width, height: full.height, channels: 3 } })
    .png()
    .toBuffer();
}

/** A copy of the frame in which every pixel outside the (margin-grown) rectangles holds its block's mean. */
function pixelateOutside(full: FullFrame, rects: Rect[]): Uint8Array {
  const { width: w, height: h } = full;
  const out = Uint8Array.from(full.data);
  const keep = (x: number, y: number): boolean =>
    rects.some(
      (r) =>
        x >= r.x - SHARP_MARGIN &&
        x < r.x + r.width + SHARP_MARGIN &&
        y >= r.y - SHARP_MARGIN &&
        y < r.y + r.height + SHARP_MARGIN,
    );
  for (let by = 0; by < h; by += OBSCURE_BLOCK) {
    for (let bx = 0; bx < w; bx += OBSCURE_BLOCK) {
      const x1 = Math.min(w, bx + OBSCURE_BLOCK);
      const y1 = Math.min(h, by + OBSCURE_BLOCK);
      let sum = 0;
      for (let y = by; y < y1; y++) for (let x = bx; x < x1; x++) sum += full.data[y * w + x] as number;
      const mean = Math.round(sum / ((x1 - bx) * (y1 - by)));
      for (let y = by; y < y1; y++) for (let x = bx; x < x1; x++) if (!keep(x, y)) out[y * w + x] = mean;
    }
  }
  return out;
}
