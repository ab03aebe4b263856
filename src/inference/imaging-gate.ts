/**
 * The imaging gate: is there tissue in the ROI at all? Cheap statistics on the raw grey ROI frame
 * (before any enhancement, which would amplify dark noise into texture) tell a scan from a probe
 * lifted off the skin (dark noise, horizontal reverberation bands), a blank screen, or a frozen
 * image (identical frames). Pure logic: frames in, a state out; no I/O, no clocks of its own.
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
};

export interface FrameStats {
  mean: number;
  std: number;
  brightFraction: number;
  rowStructure: number;
  /** mean absolute difference to the previous frame; null for the first */
  diff: number | null;
}

export type NoImagingReason = 'no_signal' | 'reverberation' | 'frozen';

export interface GateState {
  /** the gate's (debounced) decision: tissue is being imaged */
  imaging: boolean;
  /** why not, when imaging is false */
  reason: NoImagingReason | null;
  /** this very frame shows no tissue (undebounced): nothing in it should count as evidence */
  frameOk: boolean;
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
  for (let y = y0; y < y0 + ch; y++) {
    let rs = 0;
    const row = y * width;
    for (let x = x0; x < x0 + cw; x++) {
      const v = data[row + x] as number;
      rs += v;
      sum2 += v * v;
      if (v > o.brightLevel) bright++;
      if (prev) diff += Math.abs(v - (prev[row + x] as number));
    }
    sum += rs;
    const rm = rs / cw;
    rowSum2 += rm * rm;
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
  };
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
    return { imaging: this.state.imaging, reason: this.state.reason, frameOk, stats };
  }
}
