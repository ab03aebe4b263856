/**
 * Speckle for the phantom, made the way a scanner makes it: complex Gaussian scatter filtered by an
 * anisotropic point-spread function (wider across the beam than along it), the envelope compressed
 * for display by a power law: grey = level * (power / mean power)^a / Gamma(1 + a), a multiplicative
 * factor of mean 1 (DDTI shows nearly the same speckle CV in dark nodules as in the parenchyma,
 * which a multiplicative factor gives and additive log speckle does not). The exponent is solved so
 * the local CV matches a measured one. A few independent fields are made once; a frame blends two
 * of them, 1 + cos(t) (A - 1) + sin(t) (B - 1), which keeps the mean and the variance, so the pattern
 * decorrelates slowly from frame to frame (as when the probe moves out of plane) for two loads and
 * two multiply-adds a pixel.
 */
import { fillGaussian, gaussianBlur } from './phantom-fields.js';

export interface SpeckleOptions {
  width: number;
  height: number;
  /** PSF Gaussian sigmas in pixels: x across the beam (lateral), y along it (axial) */
  sigmaX: number;
  sigmaY: number;
  fields: number;
  /** radians of blend per frame: the rate at which the pattern decorrelates */
  step: number;
  /** the local coefficient of variation (std / mean in 9x9 windows, median) the speckle should have */
  windowCv: number;
}

/** A blend of two fields for one frame: the speckle factor is 1 + ca * A + sa * B (A, B zero-mean). */
export interface SpeckleBlend {
  a: Float32Array;
  b: Float32Array;
  ca: number;
  sa: number;
}

export class SpeckleBank {
  private readonly re: Float32Array[] = [];
  private readonly im: Float32Array[] = [];
  /** exponent on the power */
  readonly exponent: number;
  /** compressed fields minus their mean of 1 */
  private readonly fields: Float32Array[] = [];

  constructor(
    private readonly o: SpeckleOptions,
    rnd: () => number,
  ) {
    const n = o.width * o.height;
    for (let f = 0; f < o.fields; f++) {
      for (const list of [this.re, this.im]) {
        const a = new Float32Array(n);
        fillGaussian(a, rnd);
        gaussianBlur(a, o.width, o.height, o.sigmaX, o.sigmaY);
        list.push(a);
      }
    }
    this.exponent = this.solveExponent(o.windowCv);
    const k = 1 / this.meanFactor(this.exponent);
    for (let f = 0; f < o.fields; f++) {
      const re = this.re[f] as Float32Array;
      const im = this.im[f] as Float32Array;
      const d = new Float32Array(n);
      for (let i = 0; i < n; i++) d[i] = k * ((re[i] as number) ** 2 + (im[i] as number) ** 2) ** this.exponent - 1;
      this.fields.push(d);
    }
    this.re.length = 0; // the complex fields are only needed to make these
    this.im.length = 0;
  }

  /** The blend for frame `index`: continuous in index, cycling through the fields. */
  blend(index: number): SpeckleBlend {
    const phase = index * this.o.step;
    const seg = Math.floor(phase / (Math.PI / 2));
    const t = phase - seg * (Math.PI / 2);
    const a = seg % this.o.fields;
    const b = (seg + 1) % this.o.fields;
    return { a: this.fields[a] as Float32Array, b: this.fields[b] as Float32Array, ca: Math.cos(t), sa: Math.sin(t) };
  }

  /** Mean of power^a over field 0 (sampled): normalises the factor to mean 1. */
  private meanFactor(a: number): number {
    const re = this.re[0] as Float32Array;
    const im = this.im[0] as Float32Array;
    let s = 0;
    let n = 0;
    for (let i = 0; i < re.length; i += 3) {
      s += ((re[i] as number) ** 2 + (im[i] as number) ** 2) ** a;
      n++;
    }
    return s / n;
  }

  /** Median local CV (9x9 windows) of field 0 compressed with exponent a, on a central patch. */
  private windowCvAt(a: number): number {
    const { width: w, height: h } = this.o;
    const re = this.re[0] as Float32Array;
    const im = this.im[0] as Float32Array;
    const pw = Math.min(w, 160);
    const ph = Math.min(h, 160);
    const x0 = Math.floor((w - pw) / 2);
    const y0 = Math.floor((h - ph) / 2);
    const v = new Float32Array(pw * ph);
    for (let y = 0; y < ph; y++) {
      for (let x = 0; x < pw; x++) {
        const i = (y0 + y) * w + x0 + x;
        v[y * pw + x] = ((re[i] as number) ** 2 + (im[i] as number) ** 2) ** a;
      }
    }
    const cvs: number[] = [];
    const r = 4;
    for (let y = r; y < ph - r; y += 3) {
      for (let x = r; x < pw - r; x += 3) {
        let s = 0;
        let s2 = 0;
        for (let dy = -r; dy <= r; dy++) {
          for (let dx = -r; dx <= r; dx++) {
            const q = v[(y + dy) * pw + x + dx] as number;
            s += q;
            s2 += q * q;
          }
        }
        const k = (2 * r + 1) ** 2;
        const m = s / k;
        cvs.push(Math.sqrt(Math.max(0, s2 / k - m * m)) / m);
      }
    }
    cvs.sort((p, q) => p - q);
    return cvs[Math.floor(cvs.length / 2)] ?? 0;
  }

  /** The exponent whose local CV is `cv` (bisection: the CV grows with the exponent). */
  private solveExponent(cv: number): number {
    let lo = 0.01;
    let hi = 1;
    for (let it = 0; it < 18; it++) {
      const mid = (lo + hi) / 2;
      if (this.windowCvAt(mid) < cv) lo = mid;
      else hi = mid;
    }
    return (lo + hi) / 2;
  }
}
