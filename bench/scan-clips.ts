/**
 * Scan clips made from DDTI frames, the way a scan looks, with the truth of every frame:
 * - pan: the view slides across the gland and brings a nodule into view and out of it;
 * - drift: the nodule stays in view while the view drifts a few pixels;
 * - tissue: views of the gland clear of the nodule (by a margin): no nodule on screen;
 * - lifted: the probe is lifted: dark noise and horizontal reverberation bands;
 * - frozen: the scanner's freeze: one frame repeated;
 * - cut: a drift view of another nodule straight after a nodule view, with no lifted probe between (the
 *   sonographer moves on to the next nodule, or the screen switches to another view): a new nodule, a new alert.
 * - depth: a drift view whose picture is rescaled halfway through about the top centre (the probe face), as a
 *   depth or zoom change on the scanner does: the same nodule, no new alert (none in the full plan: `--depth N`).
 * Every frame gets fresh speckle and the gain wanders; the view moves inside the screen's imaging area.
 * Two framings: `roi` (the default) is what a calibrated box feeds the model, the imaging area alone
 * (capture.roi, `thyroid-edge calibrate`), scaled to one video size; `screen` keeps DDTI's margins
 * and overlays, as an uncalibrated box (whole-screen ROI) would see them.
 * Deterministic for a seed: anyone can make the same clips again.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { findImagingArea } from '../src/capture/calibrate.js';
import type { Rect } from '../src/capture/frame-source.js';
import { mulberry32 } from '../src/capture/phantom.js';
import { GreyVideoWriter } from './grey-video.js';

export type ClipKind = 'pan' | 'drift' | 'cut' | 'depth' | 'tissue' | 'lifted' | 'frozen';

/** the kinds of view that show a nodule */
export function showsNodule(kind: ClipKind): boolean {
  return kind === 'pan' || kind === 'drift' || kind === 'cut' || kind === 'depth';
}

export interface NoduleTruth {
  /** DDTI frame id */
  id: string;
  /** the nodule's visible box in screen pixels */
  bbox: Rect;
  /** visible share of the nodule's mask */
  visibleFraction: number;
  /** visible nodule area on screen / imaging area */
  areaFraction: number;
}

export interface FrameTruth {
  segment: number;
  kind: ClipKind;
  /** tissue in view (false: lifted, frozen) */
  imaging: boolean;
  /** the nodule when on screen (at least half of it in view), else null */
  nodule: NoduleTruth | null;
  /** the nodule when any part of it (≥ 5 %) is in view: an alert then is early, not false */
  partial: NoduleTruth | null;
}

export interface Segment {
  index: number;
  kind: ClipKind;
  image: string | null;
  startFrame: number;
  frames: number;
}

export interface ScanVideo {
  path: string;
  width: number;
  height: number;
  fps: number;
  seed: number;
  split: string;
  frames: FrameTruth[];
  segments: Segment[];
}

export interface ClipPlan {
  pan: number;
  drift: number;
  tissue: number;
  frozen: number;
  /** drift views of another nodule that follow a nodule view directly (no lifted probe between) */
  cut: number;
  /** drift views with a depth or zoom change halfway (the picture rescaled about the probe face) */
  depth: number;
  panS: number;
  driftS: number;
  tissueS: number;
  liftedS: number;
  frozenS: number;
}

export const FULL_PLAN: ClipPlan = {
  pan: 12,
  drift: 12,
  tissue: 10,
  frozen: 4,
  cut: 6,
  depth: 0,
  panS: 8,
  driftS: 5,
  tissueS: 6,
  liftedS: 1.5,
  frozenS: 2,
};
export const SMALL_PLAN: ClipPlan = {
  pan: 3,
  drift: 3,
  tissue: 2,
  frozen: 1,
  cut: 1,
  depth: 0,
  panS: 8,
  driftS: 5,
  tissueS: 5,
  liftedS: 1.5,
  frozenS: 2,
};

interface Source {
  id: string;
  data: Uint8Array; // grey screen
  mask: Uint8Array; // 0/1
  area: Rect; // imaging area
  maskBox: Rect; // in screen px
  integral: Float64Array; // (w+1)*(h+1) summed mask
  maskArea: number;
}

const W = 560;
const H = 360;

async function loadSource(ddti: string, id: string): Promise<Source> {
  const img = await sharp(join(ddti, 'images', `${id}.png`))
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const msk = await sharp(join(ddti, 'masks', `${id}.png`))
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (img.info.width !== W || img.info.height !== H)
    throw new Error(`${id}: ${img.info.width}x${img.info.height}, expected ${W}x${H}`);
  const data = new Uint8Array(img.data);
  const mask = new Uint8Array(W * H);
  let x0 = W,
    y0 = H,
    x1 = -1,
    y1 = -1,
    n = 0;
  for (let i = 0; i < W * H; i++) {
    if ((msk.data[i] as number) > 127) {
      mask[i] = 1;
      n++;
      const x = i % W,
        y = (i - x) / W;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x);
      y1 = Math.max(y1, y);
    }
  }
  const integral = new Float64Array((W + 1) * (H + 1));
  for (let y = 0; y < H; y++) {
    let row = 0;
    for (let x = 0; x < W; x++) {
      row += mask[y * W + x] as number;
      integral[(y + 1) * (W + 1) + x + 1] = (integral[y * (W + 1) + x + 1] as number) + row;
    }
  }
  return {
    id,
    data,
    mask,
    area: findImagingArea(data, W, H),
    maskBox: { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 },
    integral,
    maskArea: n,
  };
}

function maskIn(s: Source, r: Rect): number {
  const x0 = Math.max(0, Math.floor(r.x)),
    y0 = Math.max(0, Math.floor(r.y));
  const x1 = Math.min(W, Math.floor(r.x + r.width)),
    y1 = Math.min(H, Math.floor(r.y + r.height));
  if (x1 <= x0 || y1 <= y0) return 0;
  const I = s.integral,
    w = W + 1;
  return (
    (I[y1 * w + x1] as number) - (I[y0 * w + x1] as number) - (I[y1 * w + x0] as number) + (I[y0 * w + x0] as number)
  );
}

/** standard normal samples, drawn once: per-pixel noise from a table is fast and still seeded */
const NORMAL = (() => {
  const r = mulberry32(12345);
  const t = new Float32Array(1 << 16);
  for (let i = 0; i < t.length; i++)
    t[i] = Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());
  return t;
})();

function gaussian(rnd: () => number): number {
  return NORMAL[(rnd() * 65536) | 0] as number;
}

/** A W x H screen sampled at (sx, sy) in pixel-centre coordinates, bilinear, clamped to the screen. */
function bilinear(data: Uint8Array, sx: number, sy: number): number {
  const x0 = Math.max(0, Math.min(W - 2, Math.floor(sx)));
  const y0 = Math.max(0, Math.min(H - 2, Math.floor(sy)));
  const fx = Math.min(1, Math.max(0, sx - x0));
  const fy = Math.min(1, Math.max(0, sy - y0));
  const i = y0 * W + x0;
  return (
    ((data[i] as number) * (1 - fx) + (data[i + 1] as number) * fx) * (1 - fy) +
    ((data[i + W] as number) * (1 - fx) + (data[i + W + 1] as number) * fx) * fy
  );
}

/**
 * The view `win` (source px, inside the imaging area) shown over the whole imaging area, with fresh speckle
 * and gain.
 */
function renderView(s: Source, win: Rect, gain: number, rnd: () => number, out: Uint8Array, clean = false): void {
  out.set(s.data);
  const a = s.area;
  const kx = win.width / a.width,
    ky = win.height / a.height;
  // speckle with a grain of 2x2 px, drawn fresh for every frame
  const gw = Math.ceil(a.width / 2) + 1;
  const grain = new Float32Array(gw * (Math.ceil(a.height / 2) + 1));
  for (let i = 0; i < grain.length; i++) grain[i] = clean ? 1 : Math.max(0.3, 1 + 0.22 * gaussian(rnd));
  for (let y = 0; y < a.height; y++) {
    const sy = win.y + (y + 0.5) * ky - 0.5;
    const tgc = gain * (0.92 + 0.16 * (y / a.height)); // depth gain compensation that drifts with the gain
    for (let x = 0; x < a.width; x++) {
      const v = bilinear(s.data, win.x + (x + 0.5) * kx - 0.5, sy);
      const g = grain[(y >> 1) * gw + (x >> 1)] as number;
      out[(a.y + y) * W + a.x + x] = Math.max(0, Math.min(255, clean ? v : v * tgc * g + 2 * gaussian(rnd)));
    }
  }
}

/**
 * Probe lifted: over the screen `base` (width px wide), the imaging area `a` shows dark noise, a
 * ring-down at the top and horizontal reverberation bands fading with depth.
 */
export function renderLifted(
  base: Uint8Array,
  width: number,
  a: Rect,
  rnd: () => number,
  t: number,
  out: Uint8Array,
): void {
  out.set(base);
  const period = 22 + Math.floor(rnd() * 14);
  const bandGain = 50 + 130 * rnd(); // from faint to strong reverberation
  const decay = 0.12 + 0.3 * rnd();
  for (let y = 0; y < a.height; y++) {
    const k = Math.floor(y / period);
    const inBand = y % period < 4;
    const band = inBand ? bandGain * Math.exp(-decay * k) : 0;
    const ring = y < 12 ? 90 * (1 - y / 12) : 0;
    for (let x = 0; x < a.width; x++) {
      const v = 6 + Math.abs(gaussian(rnd)) * 7 + (band + ring) * (0.7 + 0.3 * Math.sin(x / 17 + t));
      out[(a.y + y) * width + a.x + x] = Math.max(0, Math.min(255, v));
    }
  }
}

function clampWin(s: Source, x: number, y: number, w: number, h: number): Rect {
  const a = s.area;
  return {
    x: Math.max(a.x, Math.min(a.x + a.width - w, x)),
    y: Math.max(a.y, Math.min(a.y + a.height - h, y)),
    width: w,
    height: h,
  };
}

/** the frame of a depth view of n frames (from its start) where its picture is rescaled: the middle */
export function depthStepAt(n: number): number {
  return Math.ceil(n / 2);
}

/** the zoom of a depth view before its step, small enough that the zoomed-out picture still fits the imaging area */
const DEPTH_ZOOM = 0.62;

/** a depth or zoom step: magnified by 1.25-1.43 (zoom in, less depth) or by 0.7-0.8 (zoom out), half each */
function depthStep(rnd: () => number): number {
  const m = 1.25 + 0.18 * rnd();
  return rnd() < 0.5 ? m : 1 / m;
}

/**
 * The window of a depth view at magnification `m` (1 before the step, `mag` after), about the top centre `x`, `y`:
 * the larger of the two windows is placed inside the imaging area first, so that the step rescales the picture
 * about the same probe face without shifting it.
 */
function depthWin(s: Source, x: number, y: number, zoom: number, m: number, mag: number): Rect {
  const a = s.area;
  const big = Math.max(1, 1 / mag);
  const outer = clampWin(s, x - (a.width * zoom * big) / 2, y, a.width * zoom * big, a.height * zoom * big);
  const [w, h] = [(a.width * zoom) / m, (a.height * zoom) / m];
  return { x: outer.x + outer.width / 2 - w / 2, y: outer.y, width: w, height: h };
}

function truthOf(s: Source, win: Rect, minVisible = 0.5): NoduleTruth | null {
  const inView = maskIn(s, win);
  const visibleFraction = s.maskArea ? inView / s.maskArea : 0;
  if (visibleFraction < minVisible || inView === 0) return null;
  const a = s.area;
  const b = s.maskBox;
  const x0 = Math.max(b.x, win.x),
    y0 = Math.max(b.y, win.y);
  const x1 = Math.min(b.x + b.width, win.x + win.width),
    y1 = Math.min(b.y + b.height, win.y + win.height);
  const kx = a.width / win.width,
    ky = a.height / win.height;
  return {
    id: s.id,
    bbox: { x: a.x + (x0 - win.x) * kx, y: a.y + (y0 - win.y) * ky, width: (x1 - x0) * kx, height: (y1 - y0) * ky },
    visibleFraction,
    areaFraction: (inView * kx * ky) / (a.width * a.height),
  };
}

/** A view of the gland clear of the nodule's box grown by `margin`, or null when there is none. */
function clearView(s: Source, zoom: number, margin: number, rnd: () => number): Rect | null {
  const a = s.area;
  const w = Math.round(a.width * zoom),
    h = Math.round(a.height * zoom);
  const b = s.maskBox;
  const grown = { x: b.x - margin, y: b.y - margin, width: b.width + 2 * margin, height: b.height + 2 * margin };
  const options: Rect[] = [];
  for (let i = 0; i <= 8; i++)
    for (let j = 0; j <= 8; j++) {
      const r = { x: a.x + ((a.width - w) * i) / 8, y: a.y + ((a.height - h) * j) / 8, width: w, height: h };
      const apart =
        r.x + r.width <= grown.x ||
        grown.x + grown.width <= r.x ||
        r.y + r.height <= grown.y ||
        grown.y + grown.height <= r.y;
      if (
        apart &&
        maskIn(s, { x: r.x - margin, y: r.y - margin, width: r.width + 2 * margin, height: r.height + 2 * margin }) ===
          0
      )
        options.push(r);
    }
  return options.length ? (options[Math.floor(rnd() * options.length)] as Rect) : null;
}

function shuffle<T>(a: T[], rnd: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

export interface MakeOptions {
  ddti: string;
  split: 'val' | 'test';
  seed: number;
  plan: ClipPlan;
  fps: number;
  dir: string;
  ffmpegPath?: string;
  /** roi (default): the imaging area only, as a calibrated box sees it; screen: the whole screen */
  view?: ClipView;
  /** no added speckle, gain or noise: the DDTI still's pixels as they are, only the view moves */
  clean?: boolean;
}

export type ClipView = 'roi' | 'screen';

/** the video size of the `roi` framing (each screen's imaging area is scaled to it) */
const RW = 448;
const RH = 336;

/** The imaging area `a` of a W x H screen, scaled (bilinear) to RW x RH. */
function cropArea(screen: Uint8Array, a: Rect, out: Uint8Array): void {
  const kx = a.width / RW,
    ky = a.height / RH;
  for (let y = 0; y < RH; y++) {
    const sy = a.y + (y + 0.5) * ky - 0.5;
    for (let x = 0; x < RW; x++) out[y * RW + x] = bilinear(screen, a.x + (x + 0.5) * kx - 0.5, sy);
  }
}

/** A screen-pixel truth in the `roi` framing's pixels. */
function truthInRoi(t: NoduleTruth | null, a: Rect): NoduleTruth | null {
  if (!t) return null;
  const kx = RW / a.width,
    ky = RH / a.height;
  const b = t.bbox;
  return { ...t, bbox: { x: (b.x - a.x) * kx, y: (b.y - a.y) * ky, width: b.width * kx, height: b.height * ky } };
}

export async function makeScanVideo(o: MakeOptions): Promise<ScanVideo> {
  const split = JSON.parse(readFileSync(join(o.ddti, 'split.json'), 'utf8')) as Record<string, string[]>;
  const ids = split[o.split];
  if (!ids?.length) throw new Error(`${o.ddti}/split.json: no ${o.split} frames`);
  const rnd = mulberry32(o.seed);
  const shuffled = shuffle([...ids], rnd);
  const sources: Source[] = [];
  const wanted = o.plan.pan + o.plan.drift + o.plan.cut + o.plan.depth + o.plan.tissue * 3;
  for (const id of shuffled) {
    if (sources.length >= wanted) break;
    const src = await loadSource(o.ddti, id);
    // one B-mode view per screen: dual-view screens (two panes side by side) are left out
    if (src.area.width >= 0.55 * W && src.area.height >= 0.6 * H && src.maskArea > 0) sources.push(src);
  }
  const view = o.view ?? 'roi';
  const [VW, VH] = view === 'roi' ? [RW, RH] : [W, H];
  const path = join(o.dir, `scan-${o.split}-${o.seed}-${view}.mp4`);
  const video = new GreyVideoWriter(path, {
    width: VW,
    height: VH,
    fps: o.fps,
    encoder: ['-crf', '18', '-g', String(o.fps * 2)],
    ffmpegPath: o.ffmpegPath,
  });
  const frames: FrameTruth[] = [];
  const segments: Segment[] = [];
  const buf = new Uint8Array(W * H);
  const roiBuf = new Uint8Array(RW * RH);
  /** the imaging area of the screen being written (the `roi` framing crops it) */
  let area: Rect = { x: 0, y: 0, width: W, height: H };
  let gainPhase = rnd() * 6.28;
  const write = async (
    kind: ClipKind,
    truth: FrameTruth['nodule'],
    imaging: boolean,
    partial: FrameTruth['partial'] = truth,
  ) => {
    if (view === 'roi') {
      cropArea(buf, area, roiBuf);
      frames.push({
        segment: segments.length - 1,
        kind,
        imaging,
        nodule: truthInRoi(truth, area),
        partial: truthInRoi(partial, area),
      });
    } else {
      frames.push({ segment: segments.length - 1, kind, imaging, nodule: truth, partial });
    }
    await video.write(view === 'roi' ? roiBuf : buf);
  };
  const begin = (kind: ClipKind, image: string | null) =>
    segments.push({ index: segments.length, kind, image, startFrame: frames.length, frames: 0 });
  const end = () => {
    const s = segments.at(-1)!;
    s.frames = frames.length - s.startFrame;
  };
  const gain = (i: number) => 1 + 0.15 * Math.sin(gainPhase + i / (o.fps * 1.7)) + 0.05 * Math.sin(i / 3.1);
  const lifted = async (s: Source) => {
    begin('lifted', s.id);
    area = s.area;
    const n = Math.round(o.plan.liftedS * o.fps);
    for (let i = 0; i < n; i++) {
      renderLifted(s.data, W, s.area, rnd, i / 5, buf);
      await write('lifted', null, false);
    }
    end();
  };
  // the order of segments: nodule views and clear views interleaved, a lifted probe before each but the cuts
  const kinds: ClipKind[] = [
    ...Array(o.plan.pan).fill('pan'),
    ...Array(o.plan.drift).fill('drift'),
    ...Array(o.plan.tissue).fill('tissue'),
  ];
  shuffle(kinds, rnd);
  // each cut goes straight after a nodule view that no cut follows yet
  for (let c = 0; c < o.plan.cut; c++) {
    const after = kinds.flatMap((k, i) => ((k === 'pan' || k === 'drift') && kinds[i + 1] !== 'cut' ? [i] : []));
    if (!after.length) break;
    kinds.splice((after[Math.floor(rnd() * after.length)] as number) + 1, 0, 'cut');
  }
  // depth views anywhere but straight before a cut (drawn only when the plan has them: other clips stay the same)
  for (let c = 0; c < o.plan.depth; c++) {
    const at = kinds.flatMap((k, i) => (k !== 'cut' ? [i] : []));
    kinds.splice(at[Math.floor(rnd() * at.length)] as number, 0, 'depth');
  }
  let frozenLeft = o.plan.frozen;
  let next = 0;
  for (const [ki, kind] of kinds.entries()) {
    let s: Source | undefined;
    let clear: Rect | null = null;
    const zoom = kind === 'pan' ? 0.55 : kind === 'tissue' ? 0.45 : kind === 'depth' ? DEPTH_ZOOM : 0.8;
    // tissue needs a frame with room clear of the nodule; nodule views take any
    while (next < sources.length) {
      const c = sources[next++]!;
      if (kind !== 'tissue') {
        s = c;
        break;
      }
      clear = clearView(c, zoom, 12, rnd);
      if (clear) {
        s = c;
        break;
      }
    }
    if (!s) continue;
    if (kind !== 'cut') await lifted(s);
    begin(kind, s.id);
    const a = s.area;
    area = a;
    const w = Math.round(a.width * zoom),
      h = Math.round(a.height * zoom);
    const b = s.maskBox;
    const seconds = kind === 'pan' ? o.plan.panS : kind === 'tissue' ? o.plan.tissueS : o.plan.driftS;
    // a depth view holds each picture for a drift view's time
    const n = Math.round((kind === 'depth' ? 2 * seconds : seconds) * o.fps);
    const dir = rnd() < 0.5 ? 1 : -1;
    // depth: magnified by `mag` from the middle on (> 1: zoom in / less depth); both pictures share the probe face
    const mag = kind === 'depth' ? depthStep(rnd) : 1;
    const cy = b.y + b.height / 2 - h / 2 + (rnd() - 0.5) * 20;
    const cx = b.x + b.width / 2 - w / 2 + (rnd() - 0.5) * 20;
    let win: Rect = { x: 0, y: 0, width: w, height: h };
    for (let i = 0; i < n; i++) {
      const u = i / Math.max(1, n - 1);
      const wob = { x: 3 * Math.sin(i / 9 + gainPhase), y: 2 * Math.sin(i / 13) };
      if (kind === 'pan') {
        // across the whole imaging area: the nodule comes into view and leaves
        const x = dir > 0 ? a.x + u * (a.width - w) : a.x + (1 - u) * (a.width - w);
        win = clampWin(s, x + wob.x, cy + wob.y + 10 * Math.sin(u * 3.14), w, h);
      } else if (kind === 'drift' || kind === 'cut') {
        win = clampWin(s, cx + 8 * Math.sin(u * 6.28) + wob.x, cy + 5 * Math.sin(u * 4) + wob.y, w, h);
      } else if (kind === 'depth') {
        win = depthWin(s, cx + w / 2 + wob.x, cy + wob.y, zoom, i < depthStepAt(n) ? 1 : mag, mag);
      } else {
        win = { ...clear!, x: clear!.x + wob.x * 0.3, y: clear!.y + wob.y * 0.3 };
      }
      renderView(s, win, gain(frames.length), rnd, buf, o.clean);
      const truth = kind === 'tissue' ? null : truthOf(s, win);
      await write(kind, truth, true, kind === 'tissue' ? null : truthOf(s, win, 0.05));
    }
    end();
    if (kind === 'drift' && kinds[ki + 1] !== 'cut' && frozenLeft > 0) {
      // the scanner is frozen on the last view (nodule on screen): identical frames
      frozenLeft--;
      const truth = truthOf(s, win);
      begin('frozen', s.id);
      for (let i = 0; i < Math.round(o.plan.frozenS * o.fps); i++) await write('frozen', truth, false);
      end();
    }
    gainPhase += 1.3;
  }
  await lifted(sources[0]!);
  await video.close();
  return { path, width: VW, height: VH, fps: o.fps, seed: o.seed, split: o.split, frames, segments };
}
