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
  const cw = Math.max(1, Math.round(width * o.centralFraction));
  const ch = Math.max(1, Math.round(height * o.centralFraction));
  const x0 = Math.floor((width - cw) / 2);
  const y0 = Math.floor((height - ch) / 2);
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
  return 1 - correlation(a, b);
}

/** Pearson correlation of two equal-length vectors; 1 when either is flat (no structure to have changed). */
function correlation(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i] as number;
    mb += b[i] as number;
  }
  ma /= n;
  mb /= n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    const da = (a[i] as number) - ma;
    const db = (b[i] as number) - mb;
    sab += da * db;
    saa += da * da;
    sbb += db * db;
  }
  return saa > 1e-9 && sbb > 1e-9 ? sab / Math.sqrt(saa * sbb) : 1;
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
  /** block means of the last frame that showed tissue: a dark blip between two frames of one scene is no cut */
  private lastTissue: Float64Array | null = null;
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
    // a copy (sources may reuse their buffers), into one buffer kept across frames: no per-frame allocation
    if (!this.prev || this.prev.length !== data.length) this.prev = new Uint8Array(data.length);
    this.prev.set(data);
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
    const change = reason === null && this.lastTissue ? structureChange(stats.blocks, this.lastTissue) : null;
    const viewChanged = this.state.imaging && change !== null && change > this.o.viewChangeLevel;
    // after a lifted probe the tracks are gone already: the scene before it is no reference
    if (!this.state.imaging) this.lastTissue = null;
    else if (reason === null) this.lastTissue = stats.blocks;
    return {
      imaging: this.state.imaging,
      reason: this.state.reason,
      frameOk,
      structureChange: change,
      viewChanged,
      stats,
    };
  }
}
