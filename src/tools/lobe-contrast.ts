/**
 * How much brighter a thyroid lobe is than what surrounds it, as the model sees it (256 x 256): the mean grey
 * of the lobe's core (more than 4 px inside its outline) over that of a ring 4-20 px outside it, both without
 * the near-black pixels (letterbox bars, lumen, air), which would measure the layout rather than the tissue.
 * Measured on TG3K's gland masks (DDTI marks nodules only) and on the phantom's lobe, with the same code.
 */
import { distanceTo } from '../capture/phantom-fields.js';
import { DEFAULT_PHANTOM, PhantomGenerator } from '../capture/phantom.js';
import { decodeMask, resizeGrey, type ResizeSpec } from '../inference/preprocess.js';

export const VIEW = 256;
/** the model's view: the daemon's crop and resize to the shipped card's size, with its kernel */
const SPEC: ResizeSpec = { width: VIEW, height: VIEW, resizeKernel: 'linear' };
const CORE_INSET = 4;
const RING = { from: 4, to: 20 };
const DARK = 8;

/** core mean / ring mean for one frame (`lobe` nonzero inside), or null with too little of either to measure. */
export function lobeContrast(grey: Uint8Array, lobe: Uint8Array, w: number, h: number): number | null {
  const toLobe = distanceTo(w, h, (i) => lobe[i] !== 0);
  const toOutside = distanceTo(w, h, (i) => lobe[i] === 0);
  let core = 0;
  let nCore = 0;
  let ring = 0;
  let nRing = 0;
  for (let i = 0; i < w * h; i++) {
    const v = grey[i] as number;
    if (v <= DARK) continue;
    if (lobe[i] !== 0 && (toOutside[i] as number) > CORE_INSET) {
      core += v;
      nCore++;
    } else if (lobe[i] === 0 && (toLobe[i] as number) > RING.from && (toLobe[i] as number) <= RING.to) {
      ring += v;
      nRing++;
    }
  }
  if (nCore < 200 || nRing < 200) return null;
  return core / nCore / (ring / nRing);
}

/** The phantom's lobe contrast at the model's view, seed by seed, on a frame with its nodule out of view. */
export async function phantomLobeContrast(seeds: readonly number[]): Promise<number[]> {
  const out: number[] = [];
  for (const seed of seeds) {
    // the nodule is away at this frame (cycle 100, visible half), so the lobe is parenchyma only
    const o = { ...DEFAULT_PHANTOM, seed, nodules: 1, cycleFrames: 100, visibleFraction: 0.5, liftWhenAbsent: false };
    const g = new PhantomGenerator(o);
    const index = 75;
    const { screen } = g.render(index);
    const { roi } = o;
    // the daemon's crop and resize, and its label resize for the lobe
    const { data: grey } = await resizeGrey({ width: o.screenWidth, height: o.screenHeight, data: screen }, SPEC, roi);
    const lobe = await decodeMask(
      g.lobe(index).map((v) => v * 255),
      VIEW,
      VIEW,
      roi,
    );
    const c = lobeContrast(grey, lobe, VIEW, VIEW);
    if (c !== null) out.push(c);
  }
  return out;
}
