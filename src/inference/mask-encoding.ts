/**
 * Mask encodings for subscribers.
 *  - PNG: 8-bit grey, 0 background / 255 nodule, at the model input size (the ROI scaled).
 *  - RLE: COCO-style uncompressed RLE: {size: [height, width], counts: [...]}, runs over the
 *    pixels in column-major order (x outer, y inner), starting with a run of zeros (possibly 0).
 */
import sharp from 'sharp';

export interface Rle {
  size: [number, number];
  counts: number[];
}

export function encodeRle(mask: Uint8Array, width: number, height: number): Rle {
  const counts: number[] = [];
  let current = 0;
  let run = 0;
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      const v = mask[y * width + x] ? 1 : 0;
      if (v !== current) {
        counts.push(run);
        run = 0;
        current = v;
      }
      run++;
    }
  }
  counts.push(run);
  return { size: [height, width], counts };
}

export function decodeRle(rle: Rle): Uint8Array {
  const [height, width] = rle.size;
  const out = new Uint8Array(width * height);
  let k = 0;
  let v = 0;
  for (const c of rle.counts) {
    for (let j = 0; j < c; j++, k++) {
      const x = Math.floor(k / height);
      const y = k % height;
      out[y * width + x] = v;
    }
    v ^= 1;
  }
  return out;
}

export async function encodePng(mask: Uint8Array, width: number, height: number): Promise<Buffer> {
  const grey = Buffer.alloc(width * height);
  for (let i = 0; i < grey.length; i++) grey[i] = mask[i] ? 255 : 0;
  // toColourspace('b-w'): keep a 1-channel PNG (libvips would otherwise write sRGB)
  return sharp(grey, { raw: { width, height, channels: 1 } })
    .toColourspace('b-w')
    .png({ compressionLevel: 2 })
    .toBuffer();
}
