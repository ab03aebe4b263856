/**
 * A synthetic B-mode thyroid "screen": a text header band (stand-in for patient data) above an
 * imaging area showing a transverse view of a thyroid lobe (phantom-anatomy.ts) with hypoechoic
 * nodules that have a thin halo. Gain, depth profile, speckle grain and strength, nodule contrast,
 * halo, size, shape and depth are drawn from statistics measured on DDTI `train` frames
 * (phantom-stats.json, made by src/tools/measure-ultrasound-stats.ts; no DDTI pixels are used). The lobe
 * grows to hold a large nodule, as a real one does, so nodule sizes follow DDTI's.
 *
 * The view pans slowly and the speckle decorrelates as a hand-held probe's would. With a cycle, each
 * nodule appears (its cross-section grows as the probe sweeps through it), then leaves, and frames
 * between appearances show the gland with no nodule. Seeded and deterministic; every frame carries
 * its ground truth (mask and the visible nodules). Pure: no I/O. Laid out for an imaging area of a
 * few hundred pixels each way, by default DDTI's median 387x299 (lengths are in screen pixels, which match
 * DDTI's, so the model sees structures at the size it learnt them).
 */
import type { Rect } from './frame-source.js';
import { mirror, renderAnatomy, toGrey, type Ellipse } from './phantom-anatomy.js';
import { mulberry32, smoothNoise } from './phantom-fields.js';
import { SpeckleBank } from './phantom-speckle.js';
import measured from './phantom-stats.json' with { type: 'json' };

export { mulberry32 } from './phantom-fields.js';

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
  /**
   * Lift the probe while no nodule is in view (cycleFrames > 0): the imaging area shows dark noise, as
   * between two views of a scan. Tracks then end at the imaging gate whatever the model makes of the gland.
   */
  liftWhenAbsent?: boolean;
}

/**
 * The imaging area is DDTI's median one (measured with the other statistics), set below the header band
 * of a screen with margins like DDTI's: the daemon resizes the imaging area to the model's input, so an
 * area of another size would show the model every structure at another scale than it learnt.
 */
const AREA = {
  width: Math.round(measured.stats.imagingWidth.p50),
  height: Math.round(measured.stats.imagingHeight.p50),
};
const MARGIN_X = 86;
const even = (n: number): number => 2 * Math.ceil(n / 2);
const HEADER = 56;

export const DEFAULT_PHANTOM: PhantomOptions = {
  seed: 1,
  // even sizes: H.264 in yuv420p (the benches' phantom video) needs them
  screenWidth: even(AREA.width + 2 * MARGIN_X),
  screenHeight: even(HEADER + AREA.height + 24),
  roi: { x: MARGIN_X, y: HEADER, ...AREA },
  nodules: 1,
  cycleFrames: 0,
  visibleFraction: 0.4,
};

interface Spread {
  p10: number;
  p50: number;
  p90: number;
}

/** The measured statistics the phantom draws with (a typed view of phantom-stats.json). */
const STATS: {
  areaMean: Spread;
  surroundMean: Spread;
  noduleRatio: Spread;
  haloRatio: Spread;
  speckleCvSurround: Spread;
  corrLengthX: Spread;
  corrLengthY: Spread;
  depthProfile: Spread[];
  noduleAreaPx: Spread;
  noduleAspect: Spread;
} = measured.stats;

/**
 * Lag at which the speckle autocorrelation falls to 0.5, per pixel of PSF sigma, as the statistics tool
 * (residual after a 15x15 mean, whole-pixel lags) reads the phantom back; ideal Gaussian-PSF speckle gives
 * sqrt(2 ln 2) = 1.18. Set so that the read-back is DDTI's median over seeds 1-12:
 * `node dist/src/tools/measure-ultrasound-stats.js --phantom 3 --seeds 1-12 --against src/capture/phantom-stats.json`
 * (with 0.98 / 0.93 it read 3.69 / 1.19 px against DDTI's 3.34 / 1.06: grains too large).
 */
const CORR_HALF_PER_SIGMA_X = 1.08;
const CORR_HALF_PER_SIGMA_Y = 1.05;
/** The anatomy's own texture adds to the speckle's: this share of DDTI's CV reads back as DDTI's (0.213 / 0.211). */
const SPECKLE_CV_SHARE = 0.93;
/** How far the view pans (px) left-right and up-down, and over how many frames. */
const PAN_X = 14;
const PAN_Y = 3;
const PAN_PERIOD = 240;
const BREATH_PERIOD = 80;
/** Smallest cross-section of a nodule as it enters or leaves the view (fraction of its full size). */
const ENTRY_SCALE = 0.5;
const ANGLE_BINS = 720;

interface Nodule {
  id: number;
  /** centre in canvas pixels */
  cx: number;
  cy: number;
  /** boundary radius (px) per angle bin at full size: ellipse with an irregular margin */
  radius: Float32Array;
  maxRadius: number;
  /** interior echo multiplier, a (2*maxRadius+1)^2 patch: contrast, heterogeneity, cystic parts */
  interior: Float32Array;
  patch: number;
  halo: number;
  haloPx: number;
  /** cycle offset 0..1 */
  phase: number;
}

/** A nodule in view, for scoring: which one, which of its appearances, and where. */
export interface VisibleNodule {
  id: number;
  /** 0 for the first time it is in view, then 1, 2, ... (always 0 without a cycle) */
  appearance: number;
  /** bounding box in ROI pixels */
  bbox: Rect;
  areaPx: number;
}

export interface PhantomFrame {
  /** full screen, grey, screenWidth x screenHeight */
  screen: Uint8Array;
  /** ground truth for the imaging area, roi.width x roi.height, values 0/1 */
  mask: Uint8Array;
  /** nodules drawn in this frame */
  visible: number;
  /** the ground truth per nodule */
  nodules: VisibleNodule[];
}

export class PhantomGenerator {
  private readonly nodules: Nodule[];
  private readonly header: Uint8Array;
  /** mean grey per canvas pixel at the seed's gain */
  private readonly base: Float32Array;
  private readonly speckle: SpeckleBank;
  private readonly gain: number;
  private readonly cw: number;
  private readonly ch: number;
  /** per-frame echo multiplier over the ROI (reused: nodules write into it) */
  private readonly mult: Float32Array;
  /** the parenchyma texture factor per canvas pixel (a nodule's interior replaces it) */
  private readonly texture: Float32Array;
  /** 1 inside the lobe and isthmus, per canvas pixel */
  private readonly glandMask: Uint8Array;

  constructor(private readonly o: PhantomOptions) {
    const r = o.roi;
    if (r.x < 0 || r.y < 0 || r.x + r.width > o.screenWidth || r.y + r.height > o.screenHeight) {
      throw new Error(`phantom ROI ${JSON.stringify(r)} lies outside the ${o.screenWidth}x${o.screenHeight} screen`);
    }
    const rnd = mulberry32(o.seed);
    // a value between the measured 10th and 90th percentiles (lo..hi picks a part of that span)
    const within = (s: Spread, lo = 0, hi = 1): number => atSpread(s, lo + (hi - lo) * rnd());
    this.cw = r.width + 2 * PAN_X;
    this.ch = r.height + 2 * PAN_Y;
    const view = { x: PAN_X, y: PAN_Y, width: r.width, height: r.height };
    // the anatomy's and the speckle's noise fields take as many draws as the area has pixels: their own
    // streams keep the seed's gain and nodules the same whatever the imaging area's size
    // nodule sizes first (their own stream): the lobe is drawn large enough to hold them
    const sizes = drawSizes(o.nodules, mulberry32((o.seed * 7919 + 3) >>> 0));
    const lobe = lobeFor(sizes, r);
    let anatomy = renderAnatomy(this.cw, this.ch, view, mulberry32((o.seed * 7919 + 1) >>> 0), lobe);
    if (rnd() < 0.5) anatomy = mirror(anatomy);
    this.texture = anatomy.texture;
    this.glandMask = anatomy.glandMask;
    this.gain = within(STATS.areaMean, 0.25, 0.75);
    this.base = toGrey(
      anatomy,
      view,
      STATS.depthProfile.map((s) => s.p50),
      this.gain,
    );
    this.speckle = new SpeckleBank(
      {
        width: this.cw,
        height: this.ch,
        sigmaX: STATS.corrLengthX.p50 / CORR_HALF_PER_SIGMA_X,
        sigmaY: STATS.corrLengthY.p50 / CORR_HALF_PER_SIGMA_Y,
        fields: 3,
        step: 0.08,
        windowCv: STATS.speckleCvSurround.p50 * SPECKLE_CV_SHARE,
      },
      mulberry32((o.seed * 7919 + 2) >>> 0),
    );
    this.nodules = placeNodules(sizes, anatomy.gland, rnd, within);
    this.header = renderHeader(o.screenWidth, o.roi.y, rnd);
    this.mult = new Float32Array(r.width * r.height);
  }

  /** The lobe (and isthmus) in the imaging area at frame `index`, ROI-sized, 0/1: for measuring the phantom. */
  lobe(index: number): Uint8Array {
    const { width: w, height: h } = this.o.roi;
    const { ox, oy } = this.offset(index);
    const out = new Uint8Array(w * h);
    for (let y = 0; y < h; y++)
      out.set(this.glandMask.subarray((y + oy) * this.cw + ox, (y + oy) * this.cw + ox + w), y * w);
    return out;
  }

  /** Pan offset of the view inside the canvas at frame `index` (integer pixels). */
  private offset(index: number): { ox: number; oy: number } {
    return {
      ox: Math.round(PAN_X + PAN_X * Math.sin((2 * Math.PI * index) / PAN_PERIOD + this.o.seed)),
      oy: Math.round(PAN_Y + PAN_Y * Math.sin((2 * Math.PI * index) / BREATH_PERIOD)),
    };
  }

  /** Which nodules are in view at frame `index`, which appearance, and at what cross-section scale. */
  schedule(index: number): { id: number; appearance: number; scale: number }[] {
    const out: { id: number; appearance: number; scale: number }[] = [];
    for (const nd of this.nodules) {
      if (this.o.cycleFrames <= 0) {
        out.push({ id: nd.id, appearance: 0, scale: 1 });
        continue;
      }
      const c = index / this.o.cycleFrames + nd.phase;
      const pos = c % 1;
      if (pos >= this.o.visibleFraction) continue;
      // the probe sweeps through the nodule: its cross-section grows, peaks, shrinks (>= ENTRY_SCALE)
      const u = (2 * pos) / this.o.visibleFraction - 1;
      // appearances are counted from the first one in view (a nodule whose first window already
      // passed before frame 0 starts at its next one)
      const appearance = Math.floor(c) - (nd.phase % 1 >= this.o.visibleFraction ? 1 : 0);
      out.push({ id: nd.id, appearance, scale: Math.sqrt(1 - (1 - ENTRY_SCALE ** 2) * u * u) });
    }
    return out;
  }

  render(index: number): PhantomFrame {
    const { roi, screenWidth, screenHeight } = this.o;
    const w = roi.width;
    const h = roi.height;
    const { ox, oy } = this.offset(index);
    const mask = new Uint8Array(w * h);
    const mult = this.mult.fill(1);
    const nodules: VisibleNodule[] = [];
    for (const s of this.schedule(index)) {
      const nd = this.nodules[s.id] as Nodule;
      const v = drawNodule(nd, s.scale, { ox, oy, cw: this.cw, texture: this.texture }, w, h, mask, mult);
      if (v) nodules.push({ id: s.id, appearance: s.appearance, ...v });
    }
    const screen = new Uint8Array(screenWidth * screenHeight);
    screen.set(this.header.subarray(0, screenWidth * roi.y));
    const { a, b, ca, sa } = this.speckle.blend(index);
    // gain wanders a little (a few per cent), as a sonographer's hand on the knob does
    const gain = 1 + 0.03 * Math.sin((2 * Math.PI * index) / 170 + this.o.seed);
    const base = this.base;
    for (let y = 0; y < h; y++) {
      const crow = (y + oy) * this.cw + ox;
      const srow = (roi.y + y) * screenWidth + roi.x;
      const mrow = y * w;
      for (let x = 0; x < w; x++) {
        const j = crow + x;
        const v =
          (base[j] as number) * (mult[mrow + x] as number) * gain * (1 + ca * (a[j] as number) + sa * (b[j] as number));
        screen[srow + x] = v >= 255 ? 255 : v <= 0 ? 0 : v + 0.5;
      }
    }
    if (this.o.liftWhenAbsent && this.o.cycleFrames > 0 && nodules.length === 0) {
      // probe lifted: faint Rayleigh speckle, no tissue (deterministic per frame)
      const rnd = mulberry32((this.o.seed * 7919 + index * 104729 + 17) >>> 0);
      for (let y = 0; y < h; y++) {
        const srow = (roi.y + y) * screenWidth + roi.x;
        for (let x = 0; x < w; x++)
          screen[srow + x] = Math.min(255, Math.round(4 * Math.sqrt(-2 * Math.log(1 - rnd()))));
      }
    }
    // depth scale ticks to the right of the imaging area, like a real scanner
    for (let y = roi.y; y < roi.y + h; y += 40) {
      for (let x = roi.x + w + 6; x < Math.min(roi.x + w + 14, screenWidth); x++) screen[y * screenWidth + x] = 200;
    }
    return { screen, mask, visible: nodules.length, nodules };
  }
}

/** The value at t (0..1) of a measured spread: p10 at 0, p50 at 0.5, p90 at 1, linear between. */
function atSpread(s: Spread, t: number): number {
  return t < 0.5 ? s.p10 + (s.p50 - s.p10) * 2 * t : s.p50 + (s.p90 - s.p50) * (2 * t - 1);
}

/** A nodule's half-axes (px) at full size, across and along the beam. */
interface NoduleSize {
  A: number;
  B: number;
}

/** The part of the lobe's width that nodules share side by side, and how much of a slot a nodule fills. */
const LOBE_SPAN = 0.85;
const FILL = 0.75;
/** The largest lobe (half-axes over the view's width and height): past it a nodule is shrunk to fit. */
const LOBE_MAX = { a: 0.42, b: 0.36 };

/**
 * Nodule sizes: area log-uniform between DDTI's measured 10th and 90th percentiles (so its median is near
 * DDTI's), aspect within the measured spread.
 */
function drawSizes(n: number, rnd: () => number): NoduleSize[] {
  const { p10, p90 } = STATS.noduleAreaPx;
  const a = STATS.noduleAspect;
  return Array.from({ length: n }, () => {
    const area = Math.exp(Math.log(p10) + (Math.log(p90) - Math.log(p10)) * rnd());
    const aspect = atSpread(a, rnd());
    const A = Math.sqrt((area * aspect) / Math.PI);
    return { A, B: A / aspect };
  });
}

/**
 * The smallest lobe that holds the nodules with parenchyma all round, as a large nodule distends a real
 * lobe (DDTI's nodules fill a median 11 % of the imaging area), capped at LOBE_MAX of the view.
 */
function lobeFor(sizes: NoduleSize[], view: { width: number; height: number }): { a: number; b: number } {
  const n = Math.max(sizes.length, 1);
  let a = 0;
  let b = 0;
  for (const { A, B } of sizes) {
    a = Math.max(a, (n * A) / (LOBE_SPAN * FILL));
    b = Math.max(b, B / FILL);
  }
  return { a: Math.min(a, LOBE_MAX.a * view.width), b: Math.min(b, LOBE_MAX.b * view.height) };
}

/**
 * Nodules inside the lobe: size (drawSizes), contrast and halo drawn from the measured spreads, shrunk
 * only when the lobe cannot grow to hold them; several nodules share the lobe side by side.
 */
function placeNodules(
  sizes: NoduleSize[],
  gland: Ellipse,
  rnd: () => number,
  within: (s: Spread, lo?: number, hi?: number) => number,
): Nodule[] {
  const out: Nodule[] = [];
  const n = sizes.length;
  for (let i = 0; i < n; i++) {
    // slot i of n across the lobe's width
    const slotW = (2 * gland.a * LOBE_SPAN) / n;
    const slotCx = gland.cx - gland.a * LOBE_SPAN + slotW * (i + 0.5);
    let { A, B } = sizes[i] as NoduleSize;
    // parenchyma all round: only a nodule larger than the largest lobe is shrunk
    const fit = Math.min(1, (0.5 * slotW * FILL) / A, (gland.b * FILL) / B);
    A *= fit;
    B *= fit;
    const cx = slotCx + (0.5 * slotW - A) * 0.8 * (rnd() * 2 - 1);
    const cy = gland.cy + (gland.b * 0.85 - B) * 0.8 * (rnd() * 2 - 1);
    // margin: mostly smooth, sometimes lobulated
    const harm = [2, 3, 4, 5, 7].map((k) => ({
      k,
      a: ((rnd() < 0.3 ? 0.06 : 0.025) * rnd()) / Math.sqrt(k - 1),
      p: rnd() * 2 * Math.PI,
    }));
    const radius = new Float32Array(ANGLE_BINS);
    let maxRadius = 0;
    for (let b = 0; b < ANGLE_BINS; b++) {
      const th = (b / ANGLE_BINS) * 2 * Math.PI - Math.PI;
      let rr = 1;
      for (const hm of harm) rr += hm.a * Math.sin(hm.k * th + hm.p);
      const re = (A * B) / Math.hypot(B * Math.cos(th), A * Math.sin(th));
      radius[b] = re * rr;
      maxRadius = Math.max(maxRadius, re * rr);
    }
    // hypoechoic: between the measured p10 and p50, its lowest fifth left out, because the texture, the halo
    // and a cystic part read back darker than drawn (measurePhantom; tests/phantom.test.ts)
    const echo = within(STATS.noduleRatio, 0.1, 0.5);
    const patch = 2 * Math.ceil(maxRadius) + 1;
    const tex = smoothNoise(patch, patch, 12, rnd);
    const interior = new Float32Array(patch * patch);
    const cyst =
      rnd() < 0.3
        ? {
            x: (rnd() - 0.5) * maxRadius * 0.6,
            y: (rnd() - 0.5) * maxRadius * 0.4,
            r: (0.15 + 0.15 * rnd()) * Math.min(A, B),
          }
        : null;
    const c = (patch - 1) / 2;
    for (let y = 0; y < patch; y++) {
      for (let x = 0; x < patch; x++) {
        let m = echo * (1 + 0.12 * (tex[y * patch + x] as number));
        if (cyst && Math.hypot(x - c - cyst.x, y - c - cyst.y) < cyst.r) m = 0.06; // a cystic part: anechoic
        interior[y * patch + x] = m;
      }
    }
    out.push({
      id: i,
      cx,
      cy,
      radius,
      maxRadius,
      interior,
      patch,
      halo: within(STATS.haloRatio, 0, 0.5),
      haloPx: 2 + 2 * rnd(),
      phase: i / Math.max(n, 1),
    });
  }
  return out;
}

/**
 * Draw one nodule at `scale` of its full size into the ROI, the view at (ox, oy) on the canvas: the
 * interior (mask = 1, its own texture in place of the parenchyma's) with a soft edge, then the halo
 * ring just outside. Returns its box and area, or null when it lies outside the ROI.
 */
function drawNodule(
  nd: Nodule,
  scale: number,
  view: { ox: number; oy: number; cw: number; texture: Float32Array },
  w: number,
  h: number,
  mask: Uint8Array,
  mult: Float32Array,
): { bbox: Rect; areaPx: number } | null {
  const cx = nd.cx - view.ox;
  const cy = nd.cy - view.oy;
  const reach = nd.maxRadius * scale + nd.haloPx + 3;
  const x0 = Math.max(0, Math.floor(cx - reach));
  const x1 = Math.min(w - 1, Math.ceil(cx + reach));
  const y0 = Math.max(0, Math.floor(cy - reach));
  const y1 = Math.min(h - 1, Math.ceil(cy + reach));
  const c = (nd.patch - 1) / 2;
  const edge = 3; // px over which the interior blends into the halo
  let bx0 = w,
    bx1 = -1,
    by0 = h,
    by1 = -1,
    area = 0;
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const bin = Math.min(ANGLE_BINS - 1, Math.floor(((Math.atan2(dy, dx) + Math.PI) / (2 * Math.PI)) * ANGLE_BINS));
      const R = (nd.radius[bin] as number) * scale;
      const d = Math.sqrt(dx * dx + dy * dy) - R; // px outside (> 0) or inside (< 0) the margin
      const i = y * w + x;
      if (d <= 0) {
        mask[i] = 1;
        area++;
        if (x < bx0) bx0 = x;
        if (x > bx1) bx1 = x;
        if (y < by0) by0 = y;
        if (y > by1) by1 = y;
        const px = Math.min(nd.patch - 1, Math.max(0, Math.round(c + dx / scale)));
        const py = Math.min(nd.patch - 1, Math.max(0, Math.round(c + dy / scale)));
        const inner =
          (nd.interior[py * nd.patch + px] as number) / (view.texture[(y + view.oy) * view.cw + x + view.ox] as number);
        mult[i] = d < -edge ? inner : nd.halo + (inner - nd.halo) * (-d / edge);
      } else if (d <= nd.haloPx) {
        mult[i] = nd.halo;
      } else if (d <= nd.haloPx + 1.5) {
        mult[i] = nd.halo + (1 - nd.halo) * ((d - nd.haloPx) / 1.5);
      }
    }
  }
  if (area === 0) return null;
  return { bbox: { x: bx0, y: by0, width: bx1 - bx0 + 1, height: by1 - by0 + 1 }, areaPx: area };
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
