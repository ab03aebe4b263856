/**
 * The phantom's static anatomy: a transverse view of one thyroid lobe as mean echo levels (before
 * speckle). Skin, subcutaneous fat, strap muscles, the lobe with its bright capsule and the isthmus
 * over the trachea (air arc, shadow, reverberation), the carotid and jugular with the
 * sternocleidomastoid above them, longus colli and the prevertebral fascia deep. Levels are relative
 * to soft tissue; the caller scales rows to the measured depth profile and gain. Pure and seeded.
 */
import { distanceTo, gaussianBlur, smoothNoise } from './phantom-fields.js';

export interface Ellipse {
  cx: number;
  cy: number;
  a: number;
  b: number;
}

export interface Anatomy {
  width: number;
  height: number;
  /** relative echo level per pixel, width x height */
  echo: Float32Array;
  /** the lobe (canvas pixels): where nodules go */
  gland: Ellipse;
  /** 1 inside the lobe (with the isthmus), else 0 */
  glandMask: Uint8Array;
  /** the parenchyma's own texture factor (1 outside the lobe): a nodule replaces it with its own */
  texture: Float32Array;
}

/**
 * Echo levels, from the look of B-mode neck scans, except the lobe's: it is set so that the lobe reads back as much
 * brighter than its surroundings as real lobes do, the median of TG3K's gland masks (src/capture/lobe-stats.json;
 * `measure-lobe-contrast --phantom` prints both). At 1.0, as first drawn, the lobe read 1.30 against TG3K's 1.51:
 * a lobe that dark among muscle and soft tissue looks like one large hypoechoic mass.
 */
const LEVEL = {
  skinLine: 2.2,
  skin: 1.5,
  fat: 0.85,
  septum: 1.4,
  fascia: 1.7,
  muscle: 0.7,
  gland: 1.25,
  capsule: 1.75,
  cartilage: 0.3,
  air: 2.3,
  shadow: 0.3,
  lumen: 0.04,
  vesselWall: 1.6,
  softTissue: 0.9,
  deep: 0.7,
};

/**
 * Draw the anatomy on a width x height canvas. The view (the part the probe shows at rest) is
 * `view` inside it; the layout is laid out relative to the view so pans reveal a little more.
 */
export function renderAnatomy(
  width: number,
  height: number,
  view: { x: number; y: number; width: number; height: number },
  rnd: () => number,
  minLobe: { a: number; b: number } = { a: 0, b: 0 },
): Anatomy {
  const w = view.width;
  const h = view.height;
  const U = (u: number): number => view.x + u; // view -> canvas coordinates
  const V = (v: number): number => view.y + v;
  const between = (lo: number, hi: number): number => lo + (hi - lo) * rnd();

  // layout in view pixels, trachea on the left (mirrored below for a left lobe seen from the other side)
  const skinY = between(6, 9);
  const fatY = between(28, 40);
  const rT = between(0.12, 0.15) * h;
  const tracheaTop = between(0.28, 0.34) * h;
  const trachea = { cx: U(between(0.07, 0.11) * w), cy: V(tracheaTop + rT) };
  // a large nodule distends its lobe: the lobe is at least what the caller's nodules need
  const ga = Math.max(between(0.26, 0.31) * w, minLobe.a);
  const gb = Math.max(between(0.19, 0.24) * h, minLobe.b);
  const gland: Ellipse = { cx: trachea.cx + rT + 6 + ga, cy: V(between(0.4, 0.47) * h), a: ga, b: gb };
  gland.cy = Math.max(gland.cy, V(fatY + 34 + gb)); // room for the strap muscles above
  const rC = between(0.06, 0.075) * h;
  const carotid = { cx: gland.cx + ga + 6 + rC, cy: gland.cy + between(0, 0.25) * gb, r: rC };
  const jugular = {
    cx: carotid.cx + 0.8 * rC,
    cy: carotid.cy - rC - between(8, 16),
    a: between(1.1, 1.5) * rC,
    b: between(0.4, 0.6) * rC,
  };
  const scm = {
    cx: carotid.cx + between(0.15, 0.25) * w,
    cy: V(fatY) + 28,
    a: between(0.3, 0.4) * w,
    b: between(16, 22),
  };
  const longus = { cx: gland.cx - 0.45 * ga, cy: gland.cy + gb + 30, a: between(50, 70), b: between(18, 26) };
  const preY = gland.cy + gb + between(55, 70);
  const glandHarm = [2, 3, 4].map((k) => ({ k, a: between(0.01, 0.04), p: between(0, 2 * Math.PI) }));
  const septa = [0.35, 0.7].map((f) => ({
    y: skinY + f * (fatY - skinY),
    amp: between(1, 4),
    per: between(60, 140),
    p: between(0, 6.28),
  }));

  const n1 = smoothNoise(width, height, 28, rnd); // soft-tissue and parenchyma texture
  const n2 = smoothNoise(width, height, 9, rnd); // finer heterogeneity
  const n3 = smoothNoise(width, height, 14, rnd); // parenchymal heterogeneity between grain and lobe
  const wobble = smoothNoise(width, height, 40, rnd); // bends striations and lines
  const lineMod = smoothNoise(width, height, 18, rnd); // specular lines are bright in places, broken in others

  // the lobe and isthmus
  const glandMask = new Uint8Array(width * height);
  const gx0 = Math.max(0, Math.floor(gland.cx - 1.3 * gland.a));
  const gx1 = Math.min(width, Math.ceil(gland.cx + 1.3 * gland.a));
  const gy0 = Math.max(0, Math.floor(gland.cy - 1.3 * gland.b));
  const gy1 = Math.min(height, Math.ceil(gland.cy + 1.3 * gland.b));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let inside = false;
      if (x >= gx0 && x < gx1 && y >= gy0 && y < gy1) {
        const dx = (x - gland.cx) / gland.a;
        const dy = (y - gland.cy) / gland.b;
        const th = Math.atan2(dy, dx);
        let rr = 1;
        for (const hm of glandHarm) rr += hm.a * Math.sin(hm.k * th + hm.p);
        inside = Math.abs(dx) ** 2.2 + Math.abs(dy) ** 2.2 <= rr ** 2.2;
      }
      if (!inside && y < trachea.cy - 0.2 * rT && x < gland.cx) {
        const dT = Math.sqrt((x - trachea.cx) ** 2 + (y - trachea.cy) ** 2);
        inside = dT > rT + 4 && dT < rT + 4 + 0.55 * gb; // the isthmus over the trachea
      }
      if (inside) glandMask[y * width + x] = 1;
    }
  }
  const toGland = distanceTo(width, height, (i) => glandMask[i] === 1);
  // the top of what lies under the strap muscles, per column: the lobe or isthmus, else the trachea
  const top = new Float32Array(width).fill(-1);
  for (let x = 0; x < width; x++) {
    for (let y = 0; y < height && top[x] === -1; y++) if (glandMask[y * width + x]) top[x] = y;
    const overTrachea =
      Math.abs(x - trachea.cx) < rT + 4 ? trachea.cy - Math.sqrt((rT + 4) ** 2 - (x - trachea.cx) ** 2) : -1;
    if (top[x] === -1 || (overTrachea > 0 && overTrachea < (top[x] as number))) top[x] = overTrachea;
  }

  const echo = new Float32Array(width * height);
  const texture = new Float32Array(width * height).fill(1);
  for (let y = 0; y < height; y++) {
    const v = y - view.y;
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const wb = wobble[i] as number;
      const t1 = n1[i] as number;
      const t2 = n2[i] as number;
      const lm = Math.min(1.3, Math.max(0.35, 0.85 + 0.4 * (lineMod[i] as number)));
      let e = LEVEL.softTissue * (1 + 0.15 * t1 + 0.1 * t2);
      if (v < skinY) e = v < 2.5 ? lm * LEVEL.skinLine : LEVEL.skin * (1 + 0.1 * t2);
      else if (v < fatY) {
        e = LEVEL.fat * (1 + 0.2 * t2);
        for (const s of septa)
          if (Math.abs(v - s.y - s.amp * Math.sin(x / s.per + s.p) - 2 * wb) < 1) e = lm * LEVEL.septum;
      } else if (v < fatY + 2.5) e = lm * LEVEL.fascia;
      else if (y < (top[x] as number) - 2.5) {
        // strap muscles over the lobe, isthmus and trachea, a fascia plane between the two layers
        e = muscleAt(v + 3 * wb, t2);
        if (Math.abs(v - fatY - 0.45 * ((top[x] as number) - V(fatY))) < 0.8 + 0.4 * wb) e = lm * (LEVEL.fascia * 0.8);
      }
      // sternocleidomastoid over the vessels
      const dScm = ell(x, y, scm);
      if (dScm <= 1 && v >= fatY + 2.5)
        e = dScm > 0.85 && Math.abs(y - scm.cy) > 0.7 * scm.b ? lm * LEVEL.fascia : muscleAt(v + 3 * wb, t2);
      // deep: longus colli, prevertebral fascia, what lies behind
      if (y > preY + 3 * wb) e = LEVEL.deep * (1 + 0.2 * t1 + 0.1 * t2);
      if (Math.abs(y - preY - 3 * wb) < 1.5) e = lm * LEVEL.fascia;
      const dLong = ell(x, y, longus);
      if (dLong <= 1) e = muscleAt(v + 3 * wb, t2) * (0.8 + 0.2 * dLong);
      // the lobe: parenchyma with gentle heterogeneity, a thin bright capsule
      if (glandMask[i] === 1) {
        texture[i] = Math.max(0.3, 1 + 0.06 * t1 + 0.05 * t2 + 0.25 * (n3[i] as number));
        e = LEVEL.gland * (texture[i] as number);
      } else if ((toGland[i] as number) <= 2.5) e = lm * LEVEL.capsule;
      // trachea: hypoechoic cartilage ring, bright air line, shadow with reverberation below
      const tx = x - trachea.cx;
      const ty = y - trachea.cy;
      if (Math.abs(tx) <= rT && ty > -rT) {
        const dT = Math.sqrt(tx * tx + ty * ty);
        if (dT <= rT && ty < 0)
          e = dT > rT - 9 ? LEVEL.cartilage * (1 + 0.2 * t2) : dT > rT - 12 ? lm * LEVEL.air : LEVEL.shadow;
        if ((ty >= 0 && Math.abs(tx) < rT - 9) || (dT < rT - 12 && ty < 0)) {
          const below = ty + Math.sqrt(Math.max(0, (rT - 11) ** 2 - tx * tx));
          const k = Math.floor(below / 22);
          e = k >= 1 && below % 22 < 3 ? lm * (LEVEL.air * 0.5 * 0.6 ** (k - 1)) : LEVEL.shadow * (1 + 0.3 * t2);
        }
      }
      // vessels: anechoic lumen, bright wall, a little enhancement behind the carotid
      const cxd = x - carotid.cx;
      const cyd = y - carotid.cy;
      const dC = Math.sqrt(cxd * cxd + cyd * cyd);
      if (dC <= carotid.r) e = LEVEL.lumen;
      else if (dC <= carotid.r + 3) e = lm * LEVEL.vesselWall;
      else if (cyd > 0 && Math.abs(cxd) < carotid.r) e *= 1 + 0.25 * Math.exp(-(cyd - carotid.r) / 60);
      const dJ = ell(x, y, jugular);
      if (dJ <= 1) e = LEVEL.lumen;
      else if (dJ <= 1.12 && dC > carotid.r + 3) e = lm * (LEVEL.vesselWall * 0.8);
      echo[i] = e;
    }
  }
  // what the beam sees of these levels is blurred by its point-spread function: soft edges
  gaussianBlur(echo, width, height, 2, 1.2);
  return { width, height, echo, gland, glandMask, texture };
}

function ell(x: number, y: number, e: Ellipse): number {
  const dx = (x - e.cx) / e.a;
  const dy = (y - e.cy) / e.b;
  return dx * dx + dy * dy;
}

/** Strap-muscle echo: fine striations along the fibres (depth `v`, bent by the caller). */
function muscleAt(v: number, texture: number): number {
  return LEVEL.muscle * (1 + 0.25 * Math.sin((2 * Math.PI * v) / 6.5)) * (1 + 0.1 * texture);
}

/** Mirror a canvas left-right (the lobe on the other side of the trachea). */
export function mirror(a: Anatomy): Anatomy {
  const { width: w, height: h } = a;
  const echo = new Float32Array(w * h);
  const glandMask = new Uint8Array(w * h);
  const texture = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      echo[y * w + x] = a.echo[y * w + (w - 1 - x)] as number;
      glandMask[y * w + x] = a.glandMask[y * w + (w - 1 - x)] as number;
      texture[y * w + x] = a.texture[y * w + (w - 1 - x)] as number;
    }
  }
  return { width: w, height: h, echo, glandMask, texture, gland: { ...a.gland, cx: w - 1 - a.gland.cx } };
}

/**
 * Scale rows so that each tenth of the view's depth has mean `profile[b] * mean` (grey levels):
 * the measured depth profile and gain. Factors are interpolated between band centres so no step
 * shows.
 */
export function toGrey(
  a: Anatomy,
  view: { x: number; y: number; width: number; height: number },
  profile: number[],
  mean: number,
): Float32Array {
  const { width: w, height: h } = a;
  const bands = profile.length;
  const centres: number[] = [];
  const factors: number[] = [];
  for (let b = 0; b < bands; b++) {
    const y0 = view.y + Math.floor((b * view.height) / bands);
    const y1 = view.y + Math.floor(((b + 1) * view.height) / bands);
    let s = 0;
    let n = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = view.x; x < view.x + view.width; x++) {
        s += a.echo[y * w + x] as number;
        n++;
      }
    }
    centres.push((y0 + y1 - 1) / 2);
    factors.push(((profile[b] as number) * mean) / Math.max(s / n, 1e-6));
  }
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    let f: number;
    if (y <= (centres[0] as number)) f = factors[0] as number;
    else if (y >= (centres[bands - 1] as number)) f = factors[bands - 1] as number;
    else {
      let b = 0;
      while (y > (centres[b + 1] as number)) b++;
      const t = (y - (centres[b] as number)) / ((centres[b + 1] as number) - (centres[b] as number));
      f = (factors[b] as number) * (1 - t) + (factors[b + 1] as number) * t;
    }
    for (let x = 0; x < w; x++) out[y * w + x] = (a.echo[y * w + x] as number) * f;
  }
  return out;
}
