/**
 * Frames without a nodule, made from a real screen (pure functions; prepare-dataset runs them
 * through the daemon's preprocessing). Two kinds, as a scan shows them:
 * - `tissue`: a crop of the imaging area that stays clear of the nodule mask by a margin;
 * - `notissue`: the probe lifted off the skin: the imaging area replaced by dark speckle with the
 *   horizontal reverberation bands of an unloaded probe, or a blank (frozen/grey) area; the
 *   screen's margins and overlays are kept, so only the tissue goes.
 * Plus `roi`: the frame cropped to its imaging area, which is what a calibrated box feeds the model;
 * and `nodulecrop` (training only): a crop of the imaging area holding the whole nodule, so that
 * "zoomed in, no margins" is never a cue for "no nodule"; and `viewcrop` (training only): a zoomed-in view
 * anywhere along the nodule's depth, which often cuts the nodule at its edge, as a pan across it does.
 */
import { findImagingArea } from '../capture/calibrate.js';
import type { Rect } from '../capture/frame-source.js';
import { mulberry32 } from '../capture/phantom.js';

export type FrameKind = 'nodule' | 'roi' | 'nodulecrop' | 'viewcrop' | 'tissue' | 'notissue';

/** The imaging area of a screen, or the whole screen where none is found. */
export function imagingArea(grey: Uint8Array, width: number, height: number): Rect {
  try {
    const r = findImagingArea(grey, width, height);
    if (r.width >= width / 4 && r.height >= height / 4) return r;
  } catch {
    // a blank screen: fall through
  }
  return { x: 0, y: 0, width, height };
}

export function maskInRect(mask: Uint8Array, width: number, r: Rect): number {
  let n = 0;
  for (let y = r.y; y < r.y + r.height; y++) {
    for (let x = r.x; x < r.x + r.width; x++) n += mask[y * width + x] as number;
  }
  return n;
}

/** The bounding box of a 0/1 mask's pixels, or null for an empty mask. */
export function maskBox(mask: Uint8Array, width: number, height: number): Rect | null {
  let x0 = width;
  let y0 = height;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (mask[y * width + x]) {
        x0 = Math.min(x0, x);
        x1 = Math.max(x1, x);
        y0 = Math.min(y0, y);
        y1 = Math.max(y1, y);
      }
    }
  }
  return x1 < 0 ? null : { x: x0, y: y0, width: x1 - x0 + 1, height: y1 - y0 + 1 };
}

function blackFraction(grey: Uint8Array, width: number, r: Rect): number {
  let n = 0;
  for (let y = r.y; y < r.y + r.height; y++) {
    for (let x = r.x; x < r.x + r.width; x++) if ((grey[y * width + x] as number) <= 2) n++;
  }
  return n / (r.width * r.height);
}

/** Grow a 0/1 mask by `margin` pixels (square neighbourhood), separable max filter. */
export function dilate(mask: Uint8Array, width: number, height: number, margin: number): Uint8Array {
  const tmp = new Uint8Array(mask.length);
  const out = new Uint8Array(mask.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v = 0;
      for (let d = Math.max(0, x - margin); d <= Math.min(width - 1, x + margin) && !v; d++)
        v = mask[y * width + d] as number;
      tmp[y * width + x] = v;
    }
  }
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height; y++) {
      let v = 0;
      for (let d = Math.max(0, y - margin); d <= Math.min(height - 1, y + margin) && !v; d++)
        v = tmp[d * width + x] as number;
      out[y * width + x] = v;
    }
  }
  return out;
}

export interface CropOptions {
  /** crop width as a fraction of the imaging area's width */
  minScale: number;
  maxScale: number;
  /** pixels kept clear around the nodule */
  margin: number;
  attempts: number;
}

const CROP_DEFAULTS: CropOptions = { minScale: 0.35, maxScale: 0.7, margin: 12, attempts: 300 };

/**
 * A crop of the imaging area clear of the (grown) nodule mask, with the model's aspect ratio
 * (± 20 %), and with no black screen margin inside. null when the nodule leaves no room.
 */
export function tissueCrop(
  grey: Uint8Array,
  mask: Uint8Array,
  width: number,
  height: number,
  aspect: number,
  rnd: () => number,
  o: Partial<CropOptions> = {},
): Rect | null {
  const c = { ...CROP_DEFAULTS, ...o };
  const area = imagingArea(grey, width, height);
  const grown = dilate(mask, width, height, c.margin);
  for (let i = 0; i < c.attempts; i++) {
    const w = Math.round(area.width * (c.minScale + rnd() * (c.maxScale - c.minScale)));
    const h = Math.round((w / aspect) * (0.8 + rnd() * 0.4));
    if (w < 32 || h < 32 || w > area.width || h > area.height) continue;
    const r = {
      x: area.x + Math.floor(rnd() * (area.width - w + 1)),
      y: area.y + Math.floor(rnd() * (area.height - h + 1)),
      width: w,
      height: h,
    };
    if (maskInRect(grown, width, r) === 0 && blackFraction(grey, width, r) < 0.02) return r;
  }
  return null;
}

/** A crop of the imaging area that holds the whole nodule with some context around it. */
export function noduleCrop(
  mask: Uint8Array,
  grey: Uint8Array,
  width: number,
  height: number,
  rnd: () => number,
): Rect | null {
  const area = imagingArea(grey, width, height);
  const box = maskBox(mask, width, height);
  if (!box) return null;
  const { x: x0, y: y0 } = box;
  const x1 = x0 + box.width - 1;
  const y1 = y0 + box.height - 1;
  const left = Math.max(area.x, x0 - Math.round((x1 - x0 + 1) * (0.2 + rnd() * 0.8)));
  const right = Math.min(area.x + area.width - 1, x1 + Math.round((x1 - x0 + 1) * (0.2 + rnd() * 0.8)));
  const top = Math.max(area.y, y0 - Math.round((y1 - y0 + 1) * (0.2 + rnd() * 0.8)));
  const bottom = Math.min(area.y + area.height - 1, y1 + Math.round((y1 - y0 + 1) * (0.2 + rnd() * 0.8)));
  if (right - left < 32 || bottom - top < 32) return null;
  return { x: left, y: top, width: right - left + 1, height: bottom - top + 1 };
}

/**
 * A zoomed-in view of the imaging area (its aspect, 45-80 % of its size) at any position across it, at the
 * nodule's depth, holding at least `minShare` of the nodule: whole, or cut by the view's edge as a pan across
 * a nodule wider than the view shows it (DDTI's frames always show their nodule whole). null if none found.
 */
export function viewCrop(
  mask: Uint8Array,
  grey: Uint8Array,
  width: number,
  height: number,
  rnd: () => number,
  minShare = 0.1,
): Rect | null {
  const area = imagingArea(grey, width, height);
  const box = maskBox(mask, width, height);
  if (!box) return null;
  const total = mask.reduce((s, v) => s + v, 0);
  for (let attempt = 0; attempt < 50; attempt++) {
    const zoom = 0.45 + rnd() * 0.35;
    const w = Math.round(area.width * zoom);
    const h = Math.round(area.height * zoom);
    const cy = box.y + (box.height - 1) / 2 - h / 2 + (rnd() - 0.5) * 0.2 * h;
    const r = {
      x: area.x + Math.floor(rnd() * (area.width - w + 1)),
      y: Math.round(Math.min(Math.max(cy, area.y), area.y + area.height - h)),
      width: w,
      height: h,
    };
    if (w >= 32 && h >= 32 && maskInRect(mask, width, r) >= minShare * total) return r;
  }
  return null;
}

/** Standard normal from two uniforms (Box-Muller). */
function gauss(rnd: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

/**
 * What the imaging area shows with the probe lifted: dark speckle (Rayleigh amplitude, grain a
 * few pixels long in x), and a few horizontal reverberation bands repeating down from the
 * transducer face, fading with depth. Or, one time in four, a flat blank area (a frozen or
 * grey screen). Written into a copy of the screen; margins and overlays stay.
 */
export function probeLifted(grey: Uint8Array, width: number, height: number, seed: number): Uint8Array {
  const rnd = mulberry32(seed);
  const out = new Uint8Array(grey);
  const area = imagingArea(grey, width, height);
  if (rnd() < 0.25) {
    const level = rnd() < 0.5 ? 0 : Math.round(rnd() * 60);
    for (let y = area.y; y < area.y + area.height; y++) {
      for (let x = area.x; x < area.x + area.width; x++)
        out[y * width + x] = Math.max(0, Math.min(255, level + Math.round(gauss(rnd))));
    }
    return out;
  }
  const mean = 3 + rnd() * 25;
  const bands = Math.floor(rnd() * 7);
  const spacing = 8 + rnd() * 40;
  const thickness = 1 + rnd() * 4;
  const bandLevel = 40 + rnd() * 150;
  const decay = 0.15 + rnd() * 0.6;
  const grain = 1 + Math.floor(rnd() * 4);
  for (let y = area.y; y < area.y + area.height; y++) {
    const depth = y - area.y;
    let band = 0;
    for (let b = 0; b < bands; b++) {
      const d = (depth - (b + 0.5) * spacing) / thickness;
      band += bandLevel * Math.exp(-b * decay) * Math.exp(-0.5 * d * d);
    }
    let prev = 0;
    for (let x = area.x; x < area.x + area.width; x++) {
      // Rayleigh speckle, held over `grain` pixels along x and smoothed, as a lateral beam would
      if ((x - area.x) % grain === 0) prev = Math.sqrt(-2 * Math.log(1 - rnd())) / 1.2533;
      const v = (mean + band * (0.7 + 0.3 * rnd())) * prev;
      out[y * width + x] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return out;
}

/**
 * The same screen as another scanner setting would show it: fresh multiplicative speckle (grain of 1-3 px,
 * strength 0.1-0.35), an overall gain of 0.75-1.3 with a depth ramp, and a little additive noise, over
 * the imaging area only. Applied before the preprocessing, because the enhancement amplifies grain in
 * flat regions: speckle added after it does not look like this, and the model must not take it for a nodule.
 */
export function respeckled(grey: Uint8Array, width: number, height: number, seed: number): Uint8Array {
  const rnd = mulberry32(seed);
  const out = new Uint8Array(grey);
  const a = imagingArea(grey, width, height);
  const grain = 1 + Math.floor(rnd() * 3);
  const strength = 0.1 + rnd() * 0.25;
  const gain = 0.75 + rnd() * 0.55;
  const ramp = (rnd() * 2 - 1) * 0.2; // depth gain compensation set a little off
  const noise = rnd() * 3;
  const gw = Math.ceil(a.width / grain) + 1;
  const field = new Float32Array(gw * (Math.ceil(a.height / grain) + 1));
  for (let i = 0; i < field.length; i++) field[i] = Math.max(0.3, 1 + strength * gauss(rnd));
  for (let y = 0; y < a.height; y++) {
    const g = gain * (1 + ramp * (y / a.height - 0.5));
    const row = Math.floor(y / grain) * gw;
    for (let x = 0; x < a.width; x++) {
      const i = (a.y + y) * width + a.x + x;
      const v = (grey[i] as number) * g * (field[row + Math.floor(x / grain)] as number) + noise * gauss(rnd);
      out[i] = Math.max(0, Math.min(255, Math.round(v)));
    }
  }
  return out;
}
