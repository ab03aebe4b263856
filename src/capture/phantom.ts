/**
 * A synthetic B-mode thyroid "screen": a text header band (stand-in for patient data) above an
 * imaging area with speckle, depth attenuation, superficial layers and hypoechoic nodules with
 * irregular margins drifting across frames. Seeded and deterministic; returns the ground-truth
 * nodule mask for the imaging area so tests can score the whole pipeline. Pure: no I/O.
 */
import type { Rect } from './frame-source.js';

export interface PhantomOptions {
  seed: number;
  screenWidth: number;
  screenHeight: number;
  /** the imaging area inside the screen */
  roi: Rect;
  nodules: number;
  /** frames per appear/disappear cycle of each nodule; 0 = always visible */
  cycleFrames: number;
  /** fraction of each cycle during which a nodule is visible */
  visibleFraction: number;
}

export const DEFAULT_PHANTOM: PhantomOptions = {
  seed: 1,
  screenWidth: 640,
  screenHeight: 480,
  roi: { x: 64, y: 56, width: 512, height: 400 },
  nodules: 1,
  cycleFrames: 0,
  visibleFraction: 0.6,
};

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface NoduleShape {
  cx: number; // fraction of ROI width
  cy: number; // fraction of ROI height
  vx: number; // fraction per frame
  vy: number;
  radius: number; // fraction of ROI height
  harmonics: { k: number; a: number; phase: number }[];
  /** radius factor per angle bin (irregular margin), precomputed */
  profile: Float32Array;
  echo: number; // interior brightness relative to tissue
  rim: number;
  phase: number; // cycle offset 0..1
}

export interface PhantomFrame {
  /** full screen, grey, screenWidth x screenHeight */
  screen: Uint8Array;
  /** ground truth for the imaging area, roi.width x roi.height, values 0/1 */
  mask: Uint8Array;
  /** nodules drawn in this frame */
  visible: number;
}

export class PhantomGenerator {
  private readonly nodules: NoduleShape[];
  private readonly header: Uint8Array;
  private readonly tissue: Float32Array;
  /** a small bank of speckle fields, drawn with random offsets per frame (cheap per frame) */
  private readonly speckle: Float32Array[];

  constructor(private readonly o: PhantomOptions) {
    const r = o.roi;
    if (r.x < 0 || r.y < 0 || r.x + r.width > o.screenWidth || r.y + r.height > o.screenHeight) {
      throw new Error(`phantom ROI ${JSON.stringify(r)} lies outside the ${o.screenWidth}x${o.screenHeight} screen`);
    }
    const rnd = mulberry32(o.seed);
    this.nodules = Array.from({ length: o.nodules }, (_, i) => ({
      cx: 0.3 + 0.4 * rnd(),
      cy: 0.35 + 0.3 * rnd(),
      vx: (rnd() - 0.5) * 0.004,
      vy: (rnd() - 0.5) * 0.002,
      radius: 0.1 + 0.08 * rnd(),
      harmonics: [2, 3, 4, 5, 7].map((k) => ({ k, a: (0.03 + 0.07 * rnd()) / Math.sqrt(k - 1), phase: rnd() * 2 * Math.PI })),
      echo: 0.65 + 0.15 * rnd(),
      rim: rnd() < 0.5 ? 1.4 : 1.0,
      phase: i / Math.max(o.nodules, 1),
      profile: new Float32Array(0),
    }));
    for (const nd of this.nodules) {
      nd.profile = new Float32Array(ANGLE_BINS);
      for (let b = 0; b < ANGLE_BINS; b++) {
        const theta = (b / ANGLE_BINS) * 2 * Math.PI - Math.PI;
        let rr = 1;
        for (const hm of nd.harmonics) rr += hm.a * Math.sin(hm.k * theta + hm.phase);
        nd.profile[b] = rr;
      }
    }
    this.header = renderHeader(o.screenWidth, o.roi.y, rnd);
    this.tissue = renderTissue(r.width, r.height, rnd);
    const n = r.width * r.height;
    const a = new Float32Array(n);
    const b = new Float32Array(n);
    const tmp = new Float32Array(n);
    this.speckle = Array.from({ length: 4 }, () => {
      // magnitude of smoothed complex Gaussian noise: Rayleigh-distributed speckle
      fillGaussian(a, rnd);
      fillGaussian(b, rnd);
      boxBlur(a, tmp, r.width, r.height);
      boxBlur(b, tmp, r.width, r.height);
      return a.map((v, i) => Math.sqrt(v * v + (b[i] as number) ** 2) * 0.8);
    });
  }

  render(index: number): PhantomFrame {
    const { roi, screenWidth, screenHeight } = this.o;
    const w = roi.width;
    const h = roi.height;
    const rnd = mulberry32((this.o.seed * 7919 + index * 104729) >>> 0);
    const field = this.speckle[index % this.speckle.length] as Float32Array;
    const shift = Math.floor(rnd() * w * h);
    const mask = new Uint8Array(w * h);
    const echo = new Float32Array(w * h).fill(1);
    let visible = 0;
    for (const nd of this.nodules) {
      if (this.o.cycleFrames > 0) {
        const pos = (index / this.o.cycleFrames + nd.phase) % 1;
        if (pos >= this.o.visibleFraction) continue;
      }
      visible++;
      const cx = bounce(nd.cx + nd.vx * index, 0.2, 0.8) * w;
      const cy = bounce(nd.cy + nd.vy * index, 0.3, 0.75) * h;
      const R = nd.radius * h;
      const x0 = Math.max(0, Math.floor(cx - 1.6 * R));
      const x1 = Math.min(w - 1, Math.ceil(cx + 1.6 * R));
      const y0 = Math.max(0, Math.floor(cy - 1.6 * R));
      const y1 = Math.min(h - 1, Math.ceil(cy + 1.6 * R));
      for (let y = y0; y <= y1; y++) {
        for (let x = x0; x <= x1; x++) {
          const dx = x - cx;
          const dy = (y - cy) * 1.25; // nodules are wider than tall in transverse views
          const bin = Math.min(ANGLE_BINS - 1, Math.floor(((Math.atan2(dy, dx) + Math.PI) / (2 * Math.PI)) * ANGLE_BINS));
          const rr = nd.profile[bin] as number;
          const d = Math.sqrt(dx * dx + dy * dy) / (R * rr);
          const i = y * w + x;
          if (d <= 1) {
            mask[i] = 1;
            echo[i] = nd.echo + (1 - nd.echo) * 0.15 * d * d;
          } else if (d < 1.12) {
            echo[i] = nd.rim; // halo or isoechoic margin
          }
          if (d > 1 && d < 1.5) {
            // posterior acoustic enhancement below the nodule
            if (dy > 0) echo[i] = Math.max(echo[i] as number, 1.15);
          }
        }
      }
    }
    const screen = new Uint8Array(screenWidth * screenHeight);
    screen.set(this.header.subarray(0, screenWidth * roi.y));
    for (let y = 0; y < h; y++) {
      const att = Math.exp((-1.1 * y) / h); // depth attenuation, time-gain compensated only partly
      const row = (roi.y + y) * screenWidth + roi.x;
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        const speckle = field[(i + shift) % field.length] as number;
        const v = (this.tissue[i] as number) * (echo[i] as number) * att * speckle * 255;
        screen[row + x] = v > 255 ? 255 : v;
      }
    }
    // depth scale ticks to the right of the imaging area, like a real scanner
    for (let y = roi.y; y < roi.y + h; y += 40) {
      for (let x = roi.x + w + 6; x < Math.min(roi.x + w + 14, screenWidth); x++) screen[y * screenWidth + x] = 200;
    }
    return { screen, mask, visible };
  }
}

const ANGLE_BINS = 720;

function bounce(v: number, lo: number, hi: number): number {
  const span = hi - lo;
  const t = (((v - lo) % (2 * span)) + 2 * span) % (2 * span);
  return lo + (t <= span ? t : 2 * span - t);
}

function fillGaussian(out: Float32Array, rnd: () => number): void {
  for (let i = 0; i < out.length; i += 2) {
    const u = Math.max(rnd(), 1e-12);
    const v = rnd();
    const m = Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
}

/** 3x3 box blur in place (gives speckle a grain of a few pixels). */
function boxBlur(a: Float32Array, tmp: Float32Array, w: number, h: number): void {
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      tmp[i] = ((a[i - (x > 0 ? 1 : 0)] as number) + (a[i] as number) + (a[i + (x < w - 1 ? 1 : 0)] as number)) / 3;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      a[i] = (((tmp[i - (y > 0 ? w : 0)] as number) + (tmp[i] as number) + (tmp[i + (y < h - 1 ? w : 0)] as number)) / 3) * 1.7;
    }
  }
}

/** Mean echogenicity: superficial bright layers (skin, strap muscles), gland, smooth variation. */
function renderTissue(w: number, h: number, rnd: () => number): Float32Array {
  const t = new Float32Array(w * h);
  const waves = Array.from({ length: 4 }, () => ({ fx: 1 + rnd() * 3, fy: 1 + rnd() * 3, p: rnd() * 6.28 }));
  const skin = 0.05 + 0.02 * rnd();
  const muscle = 0.18 + 0.05 * rnd();
  for (let y = 0; y < h; y++) {
    const fy = y / h;
    for (let x = 0; x < w; x++) {
      const fx = x / w;
      let v = 0.62;
      for (const wv of waves) v += 0.04 * Math.sin(2 * Math.PI * (wv.fx * fx + wv.fy * fy) + wv.p);
      if (fy < skin) v = 1.0;
      else if (fy < muscle) v = 0.45 + 0.15 * Math.sin(fy * 90);
      else if (fy > 0.85) v *= 0.6; // deep tissue behind the gland
      t[y * w + x] = v;
    }
  }
  return t;
}

/** A dark band with blocky pseudo-text: stands in for patient name/ID burnt into the screen. */
function renderHeader(width: number, height: number, rnd: () => number): Uint8Array {
  const band = new Uint8Array(width * Math.max(height, 0));
  band.fill(18);
  const glyphs = Array.from({ length: 26 }, () => Array.from({ length: 35 }, () => (rnd() < 0.45 ? 1 : 0)));
  for (let line = 0; line < Math.floor((height - 8) / 12); line++) {
    for (let c = 0; c < Math.floor((width - 16) / 7); c++) {
      if (rnd() < 0.15) continue; // spaces
      const g = glyphs[Math.floor(rnd() * glyphs.length)] as number[];
      for (let gy = 0; gy < 7; gy++) {
        for (let gx = 0; gx < 5; gx++) {
          if (g[gy * 5 + gx]) band[(8 + line * 12 + gy) * width + 8 + c * 7 + gx] = 230;
        }
      }
    }
  }
  return band;
}
