/** A full capture frame as PNG with rectangles drawn on it (calibrate CLI and the live view's calibrate page). */
import sharp from 'sharp';
import type { Rect } from './frame-source.js';
import type { FullFrame } from './grab.js';

export interface DrawnRect {
  rect: Rect;
  rgb: [number, number, number];
}

export async function roiPng(full: FullFrame, rects: DrawnRect[]): Promise<Buffer> {
  const rgb = Buffer.alloc(full.width * full.height * 3);
  for (let i = 0; i < full.width * full.height; i++)
    rgb[i * 3] = rgb[i * 3 + 1] = rgb[i * 3 + 2] = full.data[i] as number;
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
