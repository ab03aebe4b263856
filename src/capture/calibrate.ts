/**
 * Finds the imaging area on a full capture frame: the longest band of rows, then of columns,
 * where most pixels carry signal. Scanner headers (sparse text lines) and black margins fail
 * that test; the B-mode sector passes it. Pure function on a grey frame.
 */
import type { Rect } from './frame-source.js';

export interface CalibrateOptions {
  /** a pixel brighter than this carries signal */
  level?: number;
  /** a row/column belongs to the imaging area when at least this fraction of it carries signal */
  fraction?: number;
  /** rows/columns averaged together before the test (bridges dark nodules and speckle holes) */
  smooth?: number;
}

function longestRun(score: Float64Array, min: number): [number, number] {
  let best: [number, number] = [0, -1];
  let start = -1;
  for (let i = 0; i <= score.length; i++) {
    const on = i < score.length && (score[i] as number) >= min;
    if (on && start < 0) start = i;
    if (!on && start >= 0) {
      if (i - 1 - start > best[1] - best[0]) best = [start, i - 1];
      start = -1;
    }
  }
  return best;
}

function smooth1d(a: Float64Array, k: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) {
    let s = 0;
    let n = 0;
    for (let j = Math.max(0, i - k); j <= Math.min(a.length - 1, i + k); j++) {
      s += a[j] as number;
      n++;
    }
    out[i] = s / n;
  }
  return out;
}

export function findImagingArea(data: Uint8Array, width: number, height: number, o: CalibrateOptions = {}): Rect {
  const level = o.level ?? 24;
  const fraction = o.fraction ?? 0.35;
  const k = o.smooth ?? 3;
  const rows = new Float64Array(height);
  for (let y = 0; y < height; y++) {
    let c = 0;
    for (let x = 0; x < width; x++) if ((data[y * width + x] as number) > level) c++;
    rows[y] = c / width;
  }
  const [y0, y1] = longestRun(smooth1d(rows, k), fraction);
  const cols = new Float64Array(width);
  const span = Math.max(1, y1 - y0 + 1);
  for (let x = 0; x < width; x++) {
    let c = 0;
    for (let y = y0; y <= y1; y++) if ((data[y * width + x] as number) > level) c++;
    cols[x] = c / span;
  }
  const [x0, x1] = longestRun(smooth1d(cols, k), fraction);
  if (x1 < x0 || y1 < y0) throw new Error('no imaging area found: is the frame blank?');
  return { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}
