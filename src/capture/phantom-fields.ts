/** Seeded randomness and small field operations for the phantom (pure, deterministic). */

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

/** Standard normal samples (Box-Muller). */
export function fillGaussian(out: Float32Array, rnd: () => number): void {
  for (let i = 0; i < out.length; i += 2) {
    const u = Math.max(rnd(), 1e-12);
    const v = rnd();
    const m = Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < out.length) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
}

function kernel(sigma: number): Float32Array {
  const r = Math.max(1, Math.ceil(3 * sigma));
  const k = new Float32Array(2 * r + 1);
  let s = 0;
  for (let i = -r; i <= r; i++) s += k[i + r] = Math.exp((-i * i) / (2 * sigma * sigma));
  for (let i = 0; i < k.length; i++) k[i] = (k[i] as number) / s;
  return k;
}

/** Separable Gaussian filter in place (edges clamped); sigmas in pixels, 0 = leave that axis. */
export function gaussianBlur(a: Float32Array, w: number, h: number, sx: number, sy: number): void {
  if (sx > 0) {
    const k = kernel(sx);
    const r = (k.length - 1) / 2;
    const line = new Float32Array(w + 2 * r); // one row with clamped padding: no bounds tests inside
    for (let y = 0; y < h; y++) {
      const row = y * w;
      for (let x = -r; x < w + r; x++) line[x + r] = a[row + Math.min(w - 1, Math.max(0, x))] as number;
      for (let x = 0; x < w; x++) {
        let s = 0;
        for (let j = 0; j < k.length; j++) s += (k[j] as number) * (line[x + j] as number);
        a[row + x] = s;
      }
    }
  }
  if (sy > 0) {
    const k = kernel(sy);
    const r = (k.length - 1) / 2;
    const col = new Float32Array(h + 2 * r);
    for (let x = 0; x < w; x++) {
      for (let y = -r; y < h + r; y++) col[y + r] = a[Math.min(h - 1, Math.max(0, y)) * w + x] as number;
      for (let y = 0; y < h; y++) {
        let s = 0;
        for (let j = 0; j < k.length; j++) s += (k[j] as number) * (col[y + j] as number);
        a[y * w + x] = s;
      }
    }
  }
}

/**
 * Smooth random field, zero mean, unit std, with features about `scale` px across: noise on a
 * coarse grid, lightly filtered, then bilinearly interpolated (cheap at any scale).
 */
export function smoothNoise(w: number, h: number, scale: number, rnd: () => number): Float32Array {
  const gw = Math.ceil(w / scale) + 2;
  const gh = Math.ceil(h / scale) + 2;
  const g = new Float32Array(gw * gh);
  fillGaussian(g, rnd);
  gaussianBlur(g, gw, gh, 0.7, 0.7);
  const f = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const gy = y / scale;
    const y0 = Math.floor(gy);
    const fy = gy - y0;
    for (let x = 0; x < w; x++) {
      const gx = x / scale;
      const x0 = Math.floor(gx);
      const fx = gx - x0;
      const i = y0 * gw + x0;
      const top = (g[i] as number) * (1 - fx) + (g[i + 1] as number) * fx;
      const bot = (g[i + gw] as number) * (1 - fx) + (g[i + gw + 1] as number) * fx;
      f[y * w + x] = top * (1 - fy) + bot * fy;
    }
  }
  let m = 0;
  for (const v of f) m += v;
  m /= f.length;
  let s = 0;
  for (const v of f) s += (v - m) ** 2;
  const sd = Math.sqrt(s / f.length) || 1;
  for (let i = 0; i < f.length; i++) f[i] = ((f[i] as number) - m) / sd;
  return f;
}

/** Chamfer (3-4) distance in pixels to the nearest pixel where `inside(i)` holds. */
export function distanceTo(w: number, h: number, inside: (i: number) => boolean): Float32Array {
  // a padded grid so the two passes need no bounds tests
  const W = w + 2;
  const big = 1e9;
  const d = new Float32Array(W * (h + 2)).fill(big);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (inside(y * w + x)) d[(y + 1) * W + x + 1] = 0;
  for (let y = 1; y <= h; y++) {
    for (let x = 1; x <= w; x++) {
      const i = y * W + x;
      let v = d[i] as number;
      if (v === 0) continue;
      v = Math.min(
        v,
        (d[i - 1] as number) + 3,
        (d[i - W] as number) + 3,
        (d[i - W - 1] as number) + 4,
        (d[i - W + 1] as number) + 4,
      );
      d[i] = v;
    }
  }
  for (let y = h; y >= 1; y--) {
    for (let x = w; x >= 1; x--) {
      const i = y * W + x;
      let v = d[i] as number;
      if (v === 0) continue;
      v = Math.min(
        v,
        (d[i + 1] as number) + 3,
        (d[i + W] as number) + 3,
        (d[i + W + 1] as number) + 4,
        (d[i + W - 1] as number) + 4,
      );
      d[i] = v;
    }
  }
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = (d[(y + 1) * W + x + 1] as number) / 3;
  return out;
}
