/**
 * Image statistics of a B-mode frame with a nodule mask, measured the same way on DDTI frames and on
 * phantom frames so the two can be compared (src/tools/measure-ultrasound-stats.ts). Pure functions
 * on grey frames; all lengths are in source pixels.
 *
 * Regions: the imaging area (a rectangle, 4 px trimmed off its edges), the nodule (mask, 3+ px inside
 * its edge), the boundary band (1..4 px outside the mask: where a halo lies) and the surround
 * (8..24 px outside the mask: the parenchyma the nodule sits in).
 */
import type { Rect } from '../capture/frame-source.js';
import { distanceTo } from '../capture/phantom-fields.js';

export interface FrameStats {
  /** mean grey of the imaging area: the gain as displayed */
  areaMean: number;
  /** grey percentiles 5/50/95/99 of the imaging area */
  areaP5: number;
  areaP50: number;
  areaP95: number;
  areaP99: number;
  /** mean grey of the surround (parenchyma around the nodule) */
  surroundMean: number;
  /** nodule interior mean / surround mean */
  noduleRatio: number;
  /** boundary band mean / surround mean (< 1: a dark halo; > 1: a bright rim) */
  haloRatio: number;
  /** the band 1..4 px inside the mask edge / surround mean (a halo the annotator drew inside the outline) */
  rimInsideRatio: number;
  /** median local coefficient of variation (std / mean in 9x9 windows) in the surround and in the nodule */
  speckleCvSurround: number;
  speckleCvNodule: number;
  /**
   * texture by scale in the surround, each a std over the surround mean: fine (grey minus its 3x3
   * mean: the speckle grain), mid (3x3 mean minus 9x9 mean) and coarse (9x9 mean minus 25x25 mean)
   */
  textureFine: number;
  textureMid: number;
  textureCoarse: number;
  /**
   * the same mid and coarse texture inside the nodule (3+ px inside its edge), each a std over the nodule's
   * mean: how heterogeneous the interior is (solid and cystic parts, calcifications) next to the parenchyma
   */
  textureMidNodule: number;
  textureCoarseNodule: number;
  /** surround grey / surround mean: percentiles 5/25/50/75/95 (the shape of the speckle histogram) */
  speckleQuantiles: number[];
  /** lag (px) at which the speckle autocorrelation falls to 0.5, across (x) and along (y) the beam */
  corrLengthX: number;
  corrLengthY: number;
  /** mean grey of ten depth bands of the imaging area outside the mask, over areaMean */
  depthProfile: number[];
  /** nodule geometry: area / imaging area, bbox width / height, centroid depth / imaging height */
  noduleAreaFraction: number;
  noduleAspect: number;
  noduleDepth: number;
  /** nodule area in source pixels */
  noduleAreaPx: number;
  /** the imaging area's size in source pixels: what the daemon crops and resizes to the model's input */
  imagingWidth: number;
  imagingHeight: number;
}

/** Box sums of v and v^2 over (2r+1)^2 windows (clipped at the edges): local mean and std. */
function localMoments(g: Float32Array, w: number, h: number, r: number): { mean: Float32Array; std: Float32Array } {
  const W = w + 1;
  const s1 = new Float64Array(W * (h + 1));
  const s2 = new Float64Array(W * (h + 1));
  for (let y = 0; y < h; y++) {
    let a = 0;
    let b = 0;
    for (let x = 0; x < w; x++) {
      const v = g[y * w + x] as number;
      a += v;
      b += v * v;
      s1[(y + 1) * W + x + 1] = (s1[y * W + x + 1] as number) + a;
      s2[(y + 1) * W + x + 1] = (s2[y * W + x + 1] as number) + b;
    }
  }
  const mean = new Float32Array(w * h);
  const std = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const y0 = Math.max(0, y - r);
    const y1 = Math.min(h, y + r + 1);
    for (let x = 0; x < w; x++) {
      const x0 = Math.max(0, x - r);
      const x1 = Math.min(w, x + r + 1);
      const n = (y1 - y0) * (x1 - x0);
      const box = (s: Float64Array): number =>
        (s[y1 * W + x1] as number) -
        (s[y0 * W + x1] as number) -
        (s[y1 * W + x0] as number) +
        (s[y0 * W + x0] as number);
      const m = box(s1) / n;
      mean[y * w + x] = m;
      std[y * w + x] = Math.sqrt(Math.max(0, box(s2) / n - m * m));
    }
  }
  return { mean, std };
}

export function quantile(values: ArrayLike<number>, q: number): number {
  const a = Float64Array.from(values).sort();
  if (a.length === 0) return Number.NaN;
  const pos = (a.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(a.length - 1, lo + 1);
  return (a[lo] as number) + ((a[hi] as number) - (a[lo] as number)) * (pos - lo);
}

function mean(values: number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN;
}

/** First lag where the autocorrelation of the residual falls below 0.5 (linear between lags). */
function corrLength(res: Float32Array, inRegion: Uint8Array, w: number, h: number, dx: number, dy: number): number {
  let prev = 1;
  for (let lag = 1; lag <= 12; lag++) {
    let sab = 0;
    let saa = 0;
    let sbb = 0;
    for (let y = 0; y + lag * dy < h; y++) {
      for (let x = 0; x + lag * dx < w; x++) {
        const i = y * w + x;
        const j = (y + lag * dy) * w + x + lag * dx;
        if (!inRegion[i] || !inRegion[j]) continue;
        const a = res[i] as number;
        const b = res[j] as number;
        sab += a * b;
        saa += a * a;
        sbb += b * b;
      }
    }
    const c = saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
    if (c < 0.5) return lag - 1 + (prev - 0.5) / Math.max(prev - c, 1e-6);
    prev = c;
  }
  return 12;
}

/**
 * Statistics of one frame. `grey` and `mask` (0/nonzero) are width x height; `area` is the imaging area.
 * Returns null when the frame has too little nodule or surround inside the imaging area to measure.
 */
export function frameStats(
  grey: Uint8Array,
  mask: Uint8Array,
  width: number,
  _height: number,
  area: Rect,
): FrameStats | null {
  const t = 4; // trim: scanner ticks and the edge of the imaging area
  const ax = area.x + t;
  const ay = area.y + t;
  const w = area.width - 2 * t;
  const h = area.height - 2 * t;
  if (w < 32 || h < 32) return null;
  const g = new Float32Array(w * h);
  const m = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const s = (ay + y) * width + ax + x;
      g[y * w + x] = grey[s] as number;
      m[y * w + x] = (mask[s] as number) > 0 ? 1 : 0;
    }
  }
  const out = distanceTo(w, h, (i) => m[i] === 1);
  const inn = distanceTo(w, h, (i) => m[i] === 0);
  const { mean: lm, std: ls } = localMoments(g, w, h, 4);
  const nodule: number[] = [];
  const band: number[] = [];
  const rimIn: number[] = [];
  const surround: number[] = [];
  const cvS: number[] = [];
  const cvN: number[] = [];
  const surroundMask = new Uint8Array(w * h);
  const noduleMask = new Uint8Array(w * h);
  let sx0 = w,
    sx1 = -1,
    sy0 = h,
    sy1 = -1,
    cy = 0,
    areaPx = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = g[i] as number;
      const lmean = lm[i] as number;
      if (m[i]) {
        areaPx++;
        cy += y;
        if (x < sx0) sx0 = x;
        if (x > sx1) sx1 = x;
        if (y < sy0) sy0 = y;
        if (y > sy1) sy1 = y;
        if ((inn[i] as number) >= 1 && (inn[i] as number) <= 4) rimIn.push(v);
        if ((inn[i] as number) >= 3) {
          nodule.push(v);
          noduleMask[i] = 1;
          if ((inn[i] as number) >= 5 && lmean > 8) cvN.push((ls[i] as number) / lmean);
        }
      } else {
        const d = out[i] as number;
        if (d >= 1 && d <= 4) band.push(v);
        if (d >= 8 && d <= 24) {
          surround.push(v);
          surroundMask[i] = 1;
          if (d >= 12 && d <= 20 && lmean > 8) cvS.push((ls[i] as number) / lmean);
        }
      }
    }
  }
  if (nodule.length < 50 || surround.length < 200 || band.length < 50) return null;
  const sMean = mean(surround);
  // speckle residual: grey minus its 15x15 local mean (removes anatomy, keeps the grain)
  const { mean: big } = localMoments(g, w, h, 7);
  const res = new Float32Array(w * h);
  for (let i = 0; i < res.length; i++) res[i] = (g[i] as number) - (big[i] as number);
  const b1 = localMoments(g, w, h, 1).mean;
  const b4 = localMoments(g, w, h, 4).mean;
  const b12 = localMoments(g, w, h, 12).mean;
  const bandStd = (hi: Float32Array, lo: Float32Array, region = surroundMask, over = sMean): number => {
    let s = 0;
    let n = 0;
    for (let i = 0; i < hi.length; i++) {
      if (!region[i]) continue;
      s += ((hi[i] as number) - (lo[i] as number)) ** 2;
      n++;
    }
    return Math.sqrt(s / Math.max(n, 1)) / over;
  };
  const nMean = mean(nodule);
  const depth: number[] = [];
  const all: number[] = Array.from(g);
  const areaMean = mean(all);
  for (let b = 0; b < 10; b++) {
    const vs: number[] = [];
    for (let y = Math.floor((b * h) / 10); y < Math.floor(((b + 1) * h) / 10); y++) {
      for (let x = 0; x < w; x++) if (!m[y * w + x]) vs.push(g[y * w + x] as number);
    }
    depth.push(vs.length ? mean(vs) / areaMean : Number.NaN);
  }
  return {
    areaMean,
    areaP5: quantile(all, 0.05),
    areaP50: quantile(all, 0.5),
    areaP95: quantile(all, 0.95),
    areaP99: quantile(all, 0.99),
    surroundMean: sMean,
    noduleRatio: nMean / sMean,
    haloRatio: mean(band) / sMean,
    rimInsideRatio: mean(rimIn) / sMean,
    speckleCvSurround: quantile(cvS, 0.5),
    speckleCvNodule: quantile(cvN, 0.5),
    textureFine: bandStd(g, b1),
    textureMid: bandStd(b1, b4),
    textureCoarse: bandStd(b4, b12),
    textureMidNodule: bandStd(b1, b4, noduleMask, nMean),
    textureCoarseNodule: bandStd(b4, b12, noduleMask, nMean),
    speckleQuantiles: [0.05, 0.25, 0.5, 0.75, 0.95].map((q) => quantile(surround, q) / sMean),
    corrLengthX: corrLength(res, surroundMask, w, h, 1, 0),
    corrLengthY: corrLength(res, surroundMask, w, h, 0, 1),
    depthProfile: depth,
    noduleAreaFraction: areaPx / (w * h),
    noduleAspect: (sx1 - sx0 + 1) / (sy1 - sy0 + 1),
    noduleDepth: cy / areaPx / h,
    noduleAreaPx: areaPx,
    imagingWidth: area.width,
    imagingHeight: area.height,
  };
}

export interface Spread {
  p10: number;
  p50: number;
  p90: number;
}

export type StatsSummary = { [K in keyof FrameStats]: FrameStats[K] extends number[] ? Spread[] : Spread };

function spread(values: number[]): Spread {
  const v = values.filter((x) => Number.isFinite(x));
  const r = (x: number): number => Math.round(x * 1000) / 1000;
  return { p10: r(quantile(v, 0.1)), p50: r(quantile(v, 0.5)), p90: r(quantile(v, 0.9)) };
}

/** Per-statistic 10th/50th/90th percentiles over frames. */
export function summarise(frames: FrameStats[]): StatsSummary {
  const first = frames[0];
  if (!first) throw new Error('no frames to summarise');
  const out: Record<string, Spread | Spread[]> = {};
  for (const key of Object.keys(first) as (keyof FrameStats)[]) {
    const v0 = first[key];
    if (Array.isArray(v0)) out[key] = v0.map((_, k) => spread(frames.map((f) => (f[key] as number[])[k] as number)));
    else out[key] = spread(frames.map((f) => f[key] as number));
  }
  return out as StatsSummary;
}
