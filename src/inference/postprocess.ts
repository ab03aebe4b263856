/**
 * Logits -> binary mask -> nodules: threshold from the model card, 8-connected components,
 * components under a minimum area dropped, per-nodule geometry in model, ROI and capture coords.
 * Pure functions, no I/O.
 */
import type { Rect } from './frame.js';

export interface Nodule {
  id: number;
  /** model-input pixels */
  bbox: Rect;
  centroid: { x: number; y: number };
  areaPx: number;
  /** fraction of the ROI (model frame) area */
  areaFraction: number;
  /** mm^2 when the pixel spacing is configured */
  areaMm2: number | null;
  meanProb: number;
  maxProb: number;
  /** the same box and centroid in the original capture frame */
  capture: { bbox: Rect; centroid: { x: number; y: number } };
}

export interface PostprocessOptions {
  threshold: number;
  minAreaPx: number;
  /** mm per capture pixel (x, y), when known */
  pixelSpacingMm?: { x: number; y: number } | null;
}

export interface FrameGeometry {
  width: number;
  height: number;
  roi: Rect;
}

export interface PostprocessResult {
  /** 0/1 per pixel, only kept components */
  mask: Uint8Array;
  nodules: Nodule[];
}

/** logit threshold equivalent to a probability threshold (avoids a sigmoid per pixel) */
export function logitOf(p: number): number {
  return Math.log(p / (1 - p));
}

export function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/**
 * Label 8-connected foreground components. Returns labels (0 = background) and the count.
 * Iterative flood fill with an explicit stack: no recursion limits on big nodules.
 */
export function labelComponents(
  mask: Uint8Array,
  width: number,
  height: number,
): { labels: Int32Array; count: number } {
  const labels = new Int32Array(mask.length);
  const stack = new Int32Array(mask.length);
  let count = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    count++;
    let top = 0;
    stack[top++] = start;
    labels[start] = count;
    while (top > 0) {
      const i = stack[--top] as number;
      const x = i % width;
      const y = (i - x) / width;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          if (nx < 0 || nx >= width || (dx === 0 && dy === 0)) continue;
          const j = ny * width + nx;
          if (mask[j] && !labels[j]) {
            labels[j] = count;
            stack[top++] = j;
          }
        }
      }
    }
  }
  return { labels, count };
}

export function postprocess(logits: Float32Array, geo: FrameGeometry, o: PostprocessOptions): PostprocessResult {
  const { width, height, roi } = geo;
  const n = width * height;
  const cut = logitOf(o.threshold);
  const raw = new Uint8Array(n);
  for (let i = 0; i < n; i++) raw[i] = (logits[i] as number) > cut ? 1 : 0;
  const { labels, count } = labelComponents(raw, width, height);
  const stats = Array.from({ length: count + 1 }, () => ({
    area: 0,
    sx: 0,
    sy: 0,
    minX: Infinity,
    minY: Infinity,
    maxX: -1,
    maxY: -1,
    sumP: 0,
    maxP: 0,
  }));
  for (let i = 0; i < n; i++) {
    const l = labels[i] as number;
    if (!l) continue;
    const s = stats[l]!;
    const x = i % width;
    const y = (i - x) / width;
    const p = sigmoid(logits[i] as number);
    s.area++;
    s.sx += x;
    s.sy += y;
    s.sumP += p;
    if (p > s.maxP) s.maxP = p;
    if (x < s.minX) s.minX = x;
    if (y < s.minY) s.minY = y;
    if (x > s.maxX) s.maxX = x;
    if (y > s.maxY) s.maxY = y;
  }
  const sx = roi.width / width; // capture px per model px
  const sy = roi.height / height;
  const keep = new Uint8Array(count + 1);
  const nodules: Nodule[] = [];
  for (let l = 1; l <= count; l++) {
    const s = stats[l]!;
    if (s.area < o.minAreaPx) continue;
    keep[l] = 1;
    const bbox = { x: s.minX, y: s.minY, width: s.maxX - s.minX + 1, height: s.maxY - s.minY + 1 };
    const centroid = { x: s.sx / s.area, y: s.sy / s.area };
    const spacing = o.pixelSpacingMm;
    nodules.push({
      id: 0,
      bbox,
      centroid,
      areaPx: s.area,
      areaFraction: s.area / n,
      areaMm2: spacing ? s.area * sx * sy * spacing.x * spacing.y : null,
      meanProb: s.sumP / s.area,
      maxProb: s.maxP,
      capture: {
        bbox: { x: roi.x + bbox.x * sx, y: roi.y + bbox.y * sy, width: bbox.width * sx, height: bbox.height * sy },
        centroid: { x: roi.x + (centroid.x + 0.5) * sx, y: roi.y + (centroid.y + 0.5) * sy },
      },
    });
  }
  // largest first, ids 1..k in that order: stable for subscribers drawing a list
  nodules.sort((a, b) => b.areaPx - a.areaPx);
  for (const [i, nd] of nodules.entries()) nd.id = i + 1;
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = keep[labels[i] as number] as number;
  return { mask, nodules };
}
