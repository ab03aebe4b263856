/**
 * The "tiles" enhancement: a binomial Gaussian blur and tile-interpolated CLAHE (Zuiderveld), in
 * plain typed-array code. It costs about 3 ms per 256x256 frame, where libvips' per-pixel local
 * histogram (sharp .clahe(), the "local" method) costs ~30 ms. Models say which method they were
 * trained on in their card (preprocessing.clahe.method), and the training data is prepared
 * through this very code (src/tools/prepare-dataset.ts).
 */

/** Symmetric reflection with the edge pixel repeated (-1 -> 0, n -> n-1). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n;
  let m = i % period;
  if (m < 0) m += period;
  return m < n ? m : period - 1 - m;
}

export interface TileClaheOptions {
  /** tile size in px: the frame is cut into round(width / tileWidth) x round(height / tileHeight) tiles */
  tileWidth: number;
  tileHeight: number;
  /** clip limit as a multiple of the mean bin count (OpenCV's clipLimit); 0 = plain equalisation */
  maxSlope: number;
}

/**
 * Blur + CLAHE for one frame size, with every table and scratch buffer made once: the daemon
 * keeps one per pipeline, so a frame allocates only its output.
 */
export class FastEnhancer {
  private readonly tmp: Uint16Array;
  private readonly blurred: Uint8Array;
  private readonly xm: Int32Array;
  private readonly ym: Int32Array;
  private readonly tx: number;
  private readonly ty: number;
  private readonly xEdges: Int32Array;
  private readonly yEdges: Int32Array;
  private readonly luts: Uint8Array;
  private readonly hist = new Float64Array(256);
  private readonly wx: Float64Array;
  private readonly up: Int32Array;
  private readonly wy: Float64Array;
  /** per column: the byte offsets of its two tiles' tables within a row of tiles, and 1 - wx */
  private readonly lutA: Int32Array;
  private readonly lutB: Int32Array;
  private readonly wx1: Float64Array;

  constructor(
    readonly width: number,
    readonly height: number,
    private readonly sigma: number,
    private readonly clahe: TileClaheOptions,
  ) {
    const n = width * height;
    this.tmp = new Uint16Array(n);
    this.blurred = new Uint8Array(n);
    this.xm = Int32Array.from({ length: width + 4 }, (_, i) => reflect(i - 2, width));
    this.ym = Int32Array.from({ length: height + 4 }, (_, i) => reflect(i - 2, height) * width);
    this.tx = Math.max(1, Math.round(width / clahe.tileWidth));
    this.ty = Math.max(1, Math.round(height / clahe.tileHeight));
    this.xEdges = Int32Array.from({ length: this.tx + 1 }, (_, i) => Math.floor((i * width) / this.tx));
    this.yEdges = Int32Array.from({ length: this.ty + 1 }, (_, j) => Math.floor((j * height) / this.ty));
    this.luts = new Uint8Array(this.tx * this.ty * 256);
    // each pixel blends the two nearest tile centres per axis (clamped at the border)
    const centres = (edges: Int32Array) =>
      Float64Array.from({ length: edges.length - 1 }, (_, i) => (edges[i]! + edges[i + 1]! - 1) / 2);
    const axis = (size: number, c: Float64Array): [Int32Array, Float64Array] => {
      const lo = new Int32Array(size);
      const w = new Float64Array(size);
      for (let p = 0; p < size; p++) {
        let i = 0;
        while (i + 1 < c.length && c[i + 1]! <= p) i++;
        lo[p] = i;
        w[p] = i + 1 < c.length && p > c[i]! ? (p - c[i]!) / (c[i + 1]! - c[i]!) : 0;
      }
      return [lo, w];
    };
    const [left, wx] = axis(width, centres(this.xEdges));
    this.wx = wx;
    [this.up, this.wy] = axis(height, centres(this.yEdges));
    // the per-pixel index arithmetic of claheInto, once per column (the same values, so the same bytes)
    this.lutA = Int32Array.from(left, (i) => i * 256);
    this.lutB = Int32Array.from(left, (i) => Math.min(this.tx - 1, i + 1) * 256);
    this.wx1 = Float64Array.from(this.wx, (w) => 1 - w);
  }

  /** Blur then CLAHE; returns a new frame (callers keep it, e.g. the live view). */
  run(src: Uint8Array): Uint8Array {
    this.blurInto(src, this.blurred);
    return this.claheInto(this.blurred, new Uint8Array(this.width * this.height));
  }

  /**
   * Gaussian blur as passes of the 5-tap binomial kernel [1 4 6 4 1]/16, whose variance is exactly
   * 1: round(sigma^2) passes give variance sigma^2. Integer arithmetic, edges reflected, rounded
   * once per pass. (A float kernel was 4x slower here for no visible difference at sigma 1.)
   */
  blurInto(src: Uint8Array, out: Uint8Array): Uint8Array {
    const { width, height, tmp, xm, ym } = this;
    const passes = Math.max(1, Math.round(this.sigma * this.sigma));
    let cur = src;
    for (let p = 0; p < passes; p++) {
      for (let y = 0; y < height; y++) {
        const row = y * width;
        // the two columns at each edge reflect (the whole row when it is that narrow); the interior reads its
        // neighbours directly
        for (let x = 0; x < width; x++) {
          if (x === 2 && width > 4) x = width - 2;
          tmp[row + x] =
            cur[row + xm[x]!]! +
            4 * cur[row + xm[x + 1]!]! +
            6 * cur[row + x]! +
            4 * cur[row + xm[x + 3]!]! +
            cur[row + xm[x + 4]!]!;
        }
        for (let i = row + 2; i < row + width - 2; i++) {
          tmp[i] = cur[i - 2]! + 4 * cur[i - 1]! + 6 * cur[i]! + 4 * cur[i + 1]! + cur[i + 2]!;
        }
      }
      for (let y = 0; y < height; y++) {
        const a = ym[y]!;
        const b = ym[y + 1]!;
        const c = y * width;
        const d = ym[y + 3]!;
        const e = ym[y + 4]!;
        for (let x = 0; x < width; x++) {
          // 16 x 16 = 256: +128 rounds
          out[c + x] = (tmp[a + x]! + 4 * tmp[b + x]! + 6 * tmp[c + x]! + 4 * tmp[d + x]! + tmp[e + x]! + 128) >> 8;
        }
      }
      cur = out;
    }
    return out;
  }

  /**
   * Contrast-limited adaptive histogram equalisation: one clipped, equalised mapping per tile, the
   * clipped excess spread evenly over all bins, each pixel mapped by bilinear interpolation of the
   * four nearest tiles' mappings. `out` may be `src`.
   */
  claheInto(src: Uint8Array, out: Uint8Array): Uint8Array {
    const { width, height, tx, ty, xEdges, yEdges, luts, hist, wx, up, wy } = this;
    for (let j = 0; j < ty; j++) {
      for (let i = 0; i < tx; i++) {
        hist.fill(0);
        const xa = xEdges[i]!;
        const xb = xEdges[i + 1]!;
        const ya = yEdges[j]!;
        const yb = yEdges[j + 1]!;
        for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) hist[src[y * width + x]!]!++;
        const area = (xb - xa) * (yb - ya);
        if (this.clahe.maxSlope > 0) {
          const clip = Math.max(1, (this.clahe.maxSlope * area) / 256);
          let excess = 0;
          for (let v = 0; v < 256; v++) {
            if (hist[v]! > clip) {
              excess += hist[v]! - clip;
              hist[v] = clip;
            }
          }
          const share = excess / 256;
          for (let v = 0; v < 256; v++) hist[v] = hist[v]! + share;
        }
        let cum = 0;
        const base = (j * tx + i) * 256;
        for (let v = 0; v < 256; v++) {
          cum += hist[v]!;
          luts[base + v] = Math.min(255, Math.round((255 * cum) / area));
        }
      }
    }
    const { lutA, lutB, wx1 } = this;
    for (let y = 0; y < height; y++) {
      const j = up[y]!;
      const j2 = Math.min(ty - 1, j + 1);
      const fy = wy[y]!;
      const fy1 = 1 - fy;
      const rowTop = j * tx * 256;
      const rowBottom = j2 * tx * 256;
      const row = y * width;
      for (let x = 0; x < width; x++) {
        const v = src[row + x]!;
        const a = lutA[x]! + v;
        const b = lutB[x]! + v;
        const fx = wx[x]!;
        const fx1 = wx1[x]!;
        const top = fx1 * luts[rowTop + a]! + fx * luts[rowTop + b]!;
        const bottom = fx1 * luts[rowBottom + a]! + fx * luts[rowBottom + b]!;
        out[row + x] = fy1 * top + fy * bottom + 0.5; // Uint8Array truncates: +0.5 rounds
      }
    }
    return out;
  }
}

/** One-off blur (tests, tools); the daemon uses a FastEnhancer. */
export function gaussianBlur(src: Uint8Array, width: number, height: number, sigma: number): Uint8Array {
  return new FastEnhancer(width, height, sigma, { tileWidth: width, tileHeight: height, maxSlope: 0 }).blurInto(
    src,
    new Uint8Array(width * height),
  );
}

/** One-off CLAHE (tests, tools); the daemon uses a FastEnhancer. */
export function tileClahe(src: Uint8Array, width: number, height: number, o: TileClaheOptions): Uint8Array {
  return new FastEnhancer(width, height, 1, o).claheInto(src, new Uint8Array(width * height));
}
