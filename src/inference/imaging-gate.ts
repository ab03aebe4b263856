/**
 * The imaging gate: is there tissue in the ROI at all? Cheap statistics on the raw grey ROI frame
 * (before any enhancement, which would amplify dark noise into texture) tell a scan from a probe
 * lifted off the skin (dark noise, horizontal reverberation bands), a blank screen, or a frozen
 * image (identical frames). It also tells a moving probe from a cut to another scene (the view changed), after
 * which the tracks of the old scene must not continue on the new one. Pure logic: frames in, a state out; no
 * I/O, no clocks of its own.
 */

export interface GateOptions {
  /** the statistics look at the central part of the ROI only (margins, overlays, near field) */
  centralFraction: number;
  /** mean grey level (0..255) below which there is no tissue */
  minMean: number;
  /** a pixel brighter than this is echo, not noise */
  brightLevel: number;
  /** fraction of echo pixels below which there is no tissue */
  minBrightFraction: number;
  /** variance of row means / total variance above which the image is horizontal bands (reverberation) */
  maxRowStructure: number;
  /** mean absolute difference to the previous frame (grey levels) below which the frame counts as unchanged */
  frozenDiff: number;
  /** unchanged this long (ms) = frozen */
  frozenMs: number;
  /** consecutive frames without tissue before the state turns to no imaging */
  offFrames: number;
  /** consecutive frames with tissue before imaging is back */
  onFrames: number;
  /**
   * the view changed (another scene replaced it: a cut, not a moving probe) when the structure change from the
   * last frame with tissue exceeds this; the tracker then ends the open tracks
   */
  viewChangeLevel: number;
  /**
   * scale factors tried before a structure change counts as a cut: the last frame with tissue rescaled about the
   * top centre of the ROI (where the probe face is), as a depth or zoom change on the scanner rescales the picture.
   * A frame that matches one of them is the same scene (`rescaled`), and its tracks carry on. Empty: none tried.
   */
  viewRescales: number[];
}

export const DEFAULT_GATE: GateOptions = {
  centralFraction: 0.6,
  minMean: 25,
  brightLevel: 60,
  minBrightFraction: 0.03,
  maxRowStructure: 0.6,
  frozenDiff: 0.5,
  frozenMs: 400,
  offFrames: 2,
  onFrames: 3,
  viewChangeLevel: 0.25,
  viewRescales: [0.7, 0.8, 0.9, 1.11, 1.25, 1.43],
};

export interface FrameStats {
  mean: number;
  std: number;
  brightFraction: number;
  rowStructure: number;
  /** mean absolute difference to the previous frame; null for the first */
  diff: number | null;
  /** mean grey level of each block of a coarse grid over the central window (speckle averages out in a block) */
  blocks: Float64Array;
}

export type NoImagingReason = 'no_signal' | 'reverberation' | 'frozen';

export interface GateState {
  /** the gate's (debounced) decision: tissue is being imaged */
  imaging: boolean;
  /** why not, when imaging is false */
  reason: NoImagingReason | null;
  /** this very frame shows no tissue (undebounced): nothing in it should count as evidence */
  frameOk: boolean;
  /** structure change from the last frame with tissue (see structureChange); null when there is none */
  structureChange: number | null;
  /** while imaging: this frame shows another scene than the last frame with tissue (a cut) */
  viewChanged: boolean;
  /**
   * while imaging: the structure change was over viewChangeLevel, but the last frame with tissue rescaled by this
   * factor matches the frame (a depth or zoom change, the same scene): no cut. null otherwise
   */
  rescaled: number | null;
  stats: FrameStats;
}

/** Statistics of the central window of a grey frame; `prev` (same size) gives the frame difference. */
export function frameStats(
  data: Uint8Array,
  width: number,
  height: number,
  o: Pick<GateOptions, 'centralFraction' | 'brightLevel'>,
  prev?: Uint8Array | null,
): FrameStats {
  const { cw, ch, x0, y0 } = centralWindow(width, height, o.centralFraction);
  let sum = 0;
  let sum2 = 0;
  let bright = 0;
  let rowSum2 = 0;
  let diff = 0;
  // block sums, walked block column by block column so that no per-pixel lookup or per-frame table is needed
  const blocks = new Float64Array(BLOCKS_X * BLOCKS_Y);
  for (let j = 0; j < BLOCKS_Y; j++) {
    for (let y = y0 + gridEdge(j, BLOCKS_Y, ch); y < y0 + gridEdge(j + 1, BLOCKS_Y, ch); y++) {
      let rs = 0;
      const row = y * width;
      for (let k = 0; k < BLOCKS_X; k++) {
        let bs = 0;
        for (let x = x0 + gridEdge(k, BLOCKS_X, cw); x < x0 + gridEdge(k + 1, BLOCKS_X, cw); x++) {
          const v = data[row + x] as number;
          bs += v;
          sum2 += v * v;
          if (v > o.brightLevel) bright++;
          if (prev) diff += Math.abs(v - (prev[row + x] as number));
        }
        blocks[j * BLOCKS_X + k] = (blocks[j * BLOCKS_X + k] as number) + bs;
        rs += bs;
      }
      sum += rs;
      const rm = rs / cw;
      rowSum2 += rm * rm;
    }
  }
  for (let i = 0; i < blocks.length; i++) {
    const k = i % BLOCKS_X;
    const j = (i - k) / BLOCKS_X;
    const area =
      (gridEdge(k + 1, BLOCKS_X, cw) - gridEdge(k, BLOCKS_X, cw)) *
      (gridEdge(j + 1, BLOCKS_Y, ch) - gridEdge(j, BLOCKS_Y, ch));
    blocks[i] = area > 0 ? (blocks[i] as number) / area : 0; // a window narrower than the grid leaves blocks empty
  }
  const n = cw * ch;
  const mean = sum / n;
  const variance = Math.max(0, sum2 / n - mean * mean);
  const rowVariance = Math.max(0, rowSum2 / ch - mean * mean);
  return {
    mean,
    std: Math.sqrt(variance),
    brightFraction: bright / n,
    // a flat frame (variance 0) has no structure of any kind
    rowStructure: variance > 1e-9 ? rowVariance / variance : 0,
    diff: prev ? diff / n : null,
    blocks,
  };
}

/** The central part of a frame that the statistics look at: its size and top-left corner. */
function centralWindow(width: number, height: number, fraction: number) {
  const cw = Math.max(1, Math.round(width * fraction));
  const ch = Math.max(1, Math.round(height * fraction));
  return { cw, ch, x0: Math.floor((width - cw) / 2), y0: Math.floor((height - ch) / 2) };
}

/** the coarse grid of the structure-change statistic: blocks of about 30x30 px in a 448x336 ROI's centre */
const BLOCKS_X = 8;
const BLOCKS_Y = 6;

/** Where block k of `parts` starts along a window of `len` px (blocks differ by a pixel where it does not divide). */
function gridEdge(k: number, parts: number, len: number): number {
  return Math.ceil((k * len) / parts);
}

/**
 * How much the scene changed between two frames' block means: 1 - their correlation (gain drops out), 0..2.
 * About 0 while the probe moves over the same tissue (0.053 at most in the val scan clips' pans at 15 fps,
 * 0.27 with 3 of 4 frames dropped); 0.37-1.29 when another scene replaces the view. 0 when either frame is flat.
 */
export function structureChange(a: Float64Array, b: Float64Array): number {
  return 1 - (correlation(a, b) ?? 1);
}

/**
 * Pearson correlation of two equal-length vectors over the pairs where both are numbers (NaN: no content there);
 * 1 when either is flat (no structure to have changed); null with fewer than half the pairs.
 */
function correlation(a: Float64Array, b: Float64Array): number | null {
  let n = 0;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (Number.isNaN(x) || Number.isNaN(y)) continue;
    ma += x;
    mb += y;
    n++;
  }
  if (2 * n < a.length || n === 0) return null;
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < a.length; i++) {
    const da = (a[i] as number) - ma;
    const db = (b[i] as number) - mb;
    if (Number.isNaN(da) || Number.isNaN(db)) continue;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa > 1e-9 && sbb > 1e-9 ? sab / Math.sqrt(saa * sbb) : 1;
}

/** A frame with tissue kept as the reference of the structure change: its block means and its pixels. */
export interface SceneRef {
  blocks: Float64Array;
  data: Uint8Array;
  width: number;
  height: number;
}

/** samples per block side when block means are taken from a rescaled reference (speckle averages out over 144) */
const RESCALE_SAMPLES = 12;

/**
 * The block means (frameStats' grid) of `ref` rescaled by `scale` about the top centre of the frame, where the
 * probe face is: what a depth or zoom change on the scanner shows of the same scene (scale > 1 magnifies). NaN for
 * a block that lies mostly outside the rescaled picture.
 */
export function rescaledBlocks(ref: SceneRef, centralFraction: number, scale: number): Float64Array {
  const { width, height, data } = ref;
  const { cw, ch, x0, y0 } = centralWindow(width, height, centralFraction);
  const cx = width / 2;
  const out = new Float64Array(BLOCKS_X * BLOCKS_Y);
  for (let j = 0; j < BLOCKS_Y; j++) {
    const [by0, by1] = [y0 + gridEdge(j, BLOCKS_Y, ch), y0 + gridEdge(j + 1, BLOCKS_Y, ch)];
    for (let k = 0; k < BLOCKS_X; k++) {
      const [bx0, bx1] = [x0 + gridEdge(k, BLOCKS_X, cw), x0 + gridEdge(k + 1, BLOCKS_X, cw)];
      let sum = 0;
      let n = 0;
      for (let a = 0; a < RESCALE_SAMPLES; a++) {
        const qy = Math.floor((by0 + ((a + 0.5) * (by1 - by0)) / RESCALE_SAMPLES) / scale);
        if (qy < 0 || qy >= height) continue;
        for (let b = 0; b < RESCALE_SAMPLES; b++) {
          const qx = Math.floor(cx + (bx0 + ((b + 0.5) * (bx1 - bx0)) / RESCALE_SAMPLES - cx) / scale);
          if (qx < 0 || qx >= width) continue;
          sum += data[qy * width + qx] as number;
          n++;
        }
      }
      out[j * BLOCKS_X + k] = 4 * n >= 3 * RESCALE_SAMPLES * RESCALE_SAMPLES ? sum / n : Number.NaN;
    }
  }
  return out;
}

/**
 * The best match of a frame's block means among the reference rescaled by each of `scales`: the scale and its
 * structure change, or null when no scale leaves enough of the picture to compare.
 */
export function bestRescale(
  blocks: Float64Array,
  ref: SceneRef,
  o: Pick<GateOptions, 'centralFraction' | 'viewRescales'>,
): { scale: number; change: number } | null {
  let best: { scale: number; change: number } | null = null;
  for (const scale of o.viewRescales) {
    const c = correlation(blocks, rescaledBlocks(ref, o.centralFraction, scale));
    if (c !== null && (!best || 1 - c < best.change)) best = { scale, change: 1 - c };
  }
  return best;
}

/** Why a single frame shows no tissue, or null when it does (frozen is decided over time). */
export function noTissueReason(s: FrameStats, o: GateOptions): NoImagingReason | null {
  if (s.mean < o.minMean || s.brightFraction < o.minBrightFraction) return 'no_signal';
  if (s.rowStructure > o.maxRowStructure) return 'reverberation';
  return null;
}

/** Debounced imaging state over a stream of frames (one instance per stream). */
export class ImagingGate {
  private prev: Uint8Array | null = null;
  /** two frame copies: one is the reference scene's (lastTissue), the next frame is copied into the other */
  private readonly copies: [Uint8Array | null, Uint8Array | null] = [null, null];
  /** the last frame that showed tissue: a dark blip between two frames of one scene is no cut */
  private lastTissue: SceneRef | null = null;
  private unchangedSince: number | null = null;
  private badRun = 0;
  private goodRun = 0;
  private state: { imaging: boolean; reason: NoImagingReason | null } = { imaging: true, reason: null };

  constructor(private o: GateOptions) {}

  setOptions(o: GateOptions): void {
    this.o = o;
  }

  get imaging(): boolean {
    return this.state.imaging;
  }

  /** Feed frames in order; `at` is the capture time in ms. */
  update(data: Uint8Array, width: number, height: number, at: number): GateState {
    const prev = this.prev && this.prev.length === data.length ? this.prev : null;
    const stats = frameStats(data, width, height, this.o, prev);
    // one copy a frame (sources may reuse their buffers), into whichever of two buffers the reference scene does
    // not hold: no per-frame allocation, and the same copy serves the frozen check and the reference
    const k = this.copies[0] !== null && this.copies[0] === this.lastTissue?.data ? 1 : 0;
    if (this.copies[k]?.length !== data.length) this.copies[k] = new Uint8Array(data.length);
    const copy = this.copies[k] as Uint8Array;
    copy.set(data);
    this.prev = copy;
    let reason = noTissueReason(stats, this.o);
    if (stats.diff !== null && stats.diff < this.o.frozenDiff) {
      this.unchangedSince ??= at;
      if (!reason && at - this.unchangedSince >= this.o.frozenMs) reason = 'frozen';
    } else {
      this.unchangedSince = null;
    }
    // an unchanged frame is not evidence even before it counts as frozen: it shows nothing new
    const frameOk = reason === null && !(stats.diff !== null && stats.diff < this.o.frozenDiff);
    if (reason) {
      this.badRun++;
      this.goodRun = 0;
      if (this.state.imaging ? this.badRun >= this.o.offFrames : true) this.state = { imaging: false, reason };
    } else {
      this.goodRun++;
      this.badRun = 0;
      if (!this.state.imaging && this.goodRun >= this.o.onFrames) this.state = { imaging: true, reason: null };
    }
    const ref = this.lastTissue;
    const change = reason === null && ref ? structureChange(stats.blocks, ref.blocks) : null;
    // over the level while imaging: a cut, unless the reference rescaled explains it (only now, rarely, is that
    // worth its cost)
    const overLevel = this.state.imaging && ref !== null && change !== null && change > this.o.viewChangeLevel;
    const match = overLevel ? bestRescale(stats.blocks, ref, this.o) : null;
    const rescaled = match && match.change <= this.o.viewChangeLevel ? match.scale : null;
    const viewChanged = overLevel && rescaled === null;
    // after a lifted probe the tracks are gone already: the scene before it is no reference
    if (!this.state.imaging) this.lastTissue = null;
    else if (reason === null) this.lastTissue = { blocks: stats.blocks, data: copy, width, height };
    return {
      imaging: this.state.imaging,
      reason: this.state.reason,
      frameOk,
      structureChange: change,
      viewChanged,
      rescaled,
      stats,
    };
  }
}
