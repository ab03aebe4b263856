/** One frame through preprocess -> model -> post-process, with per-stage timings. */
import { DEFAULT_GATE, ImagingGate, type GateOptions, type GateState } from './imaging-gate.js';
import type { Frame } from './frame.js';
import type { Preprocessing } from './model-card.js';
import { postprocess, type Nodule } from './postprocess.js';
import type { FastEnhancer } from './enhance-fast.js';
import { enhance, fastEnhancerFor, toInputTensorData, toModelSize, type GreyFrame } from './preprocess.js';
import type { Segmenter } from './segmenter.js';

export interface FrameResult {
  seq: number;
  capturedAt: number;
  processedAt: number;
  width: number;
  height: number;
  roi: Frame['roi'];
  sourceWidth: number;
  sourceHeight: number;
  nodules: Nodule[];
  /** 0/1 per model pixel */
  mask: Uint8Array;
  /** the enhanced grey ROI frame the model saw (for the live view and snapshots) */
  image: GreyFrame;
  timingsMs: { decode: number; preprocess: number; inference: number; postprocess: number };
  /** the imaging gate on the raw ROI frame: is there tissue at all (probe lifted, blank, frozen)? */
  imaging: GateState;
  truth?: Uint8Array;
}

/** The card's frame rule, for cards written before it existed (the daemon's old default). */
export const LEGACY_MIN_AREA_PX = 40;

export interface ProcessorOptions {
  /** null: the model card's decision rule (its minAreaPx, chosen on val with the model) */
  minAreaPx: number | null;
  pixelSpacingMm: { x: number; y: number } | null;
  /** imaging gate settings; default DEFAULT_GATE */
  gate?: GateOptions;
}

export class FrameProcessor {
  private input: Float32Array | undefined;
  /** made once for the model's spec ("tiles" method): a frame then allocates only its output */
  private fast: FastEnhancer | undefined;
  /** one per stream: the gate compares each frame with the one before */
  private readonly gate: ImagingGate;

  constructor(
    private segmenter: Segmenter,
    private opts: ProcessorOptions,
  ) {
    this.gate = new ImagingGate(opts.gate ?? DEFAULT_GATE);
  }

  /** Model swap (updates): the next frame runs on the new model; the frame in flight finishes on the old. */
  setSegmenter(s: Segmenter): void {
    if (JSON.stringify(s.card.preprocessing) !== JSON.stringify(this.segmenter.card.preprocessing)) {
      throw new Error('a model with other preprocessing needs a pipeline restart, not a swap');
    }
    this.segmenter = s;
  }

  /** New post-processing options take effect from the next frame (no pipeline restart). */
  setOptions(opts: ProcessorOptions): void {
    this.opts = opts;
    this.gate.setOptions(opts.gate ?? DEFAULT_GATE);
  }

  get spec(): Preprocessing {
    return this.segmenter.card.preprocessing;
  }

  async process(frame: Frame): Promise<FrameResult> {
    const segmenter = this.segmenter; // one model per frame, even if a swap lands meanwhile
    const spec = segmenter.card.preprocessing;
    const t0 = performance.now();
    // on the raw frame: enhancement would turn dark noise into texture
    const imaging = this.gate.update(frame.data, frame.width, frame.height, frame.capturedAt);
    if (spec.clahe.method === 'tiles' && !this.fast) this.fast = fastEnhancerFor(spec);
    // an ffmpeg frame arrives at ROI size: resized with the card's kernel, as training data was
    const grey = await toModelSize({ width: frame.width, height: frame.height, data: frame.data }, spec);
    const enhanced = await enhance(grey, spec, this.fast);
    this.input = toInputTensorData(enhanced, spec, this.input);
    const t1 = performance.now();
    const seg = await segmenter.run(this.input);
    const t2 = performance.now();
    const pp = postprocess(
      seg.logits,
      { width: seg.width, height: seg.height, roi: frame.roi },
      {
        threshold: segmenter.card.threshold,
        minAreaPx: this.opts.minAreaPx ?? segmenter.card.decision?.minAreaPx ?? LEGACY_MIN_AREA_PX,
        pixelSpacingMm: this.opts.pixelSpacingMm,
      },
    );
    const t3 = performance.now();
    return {
      seq: frame.seq,
      capturedAt: frame.capturedAt,
      processedAt: Date.now(),
      width: seg.width,
      height: seg.height,
      roi: frame.roi,
      sourceWidth: frame.sourceWidth,
      sourceHeight: frame.sourceHeight,
      nodules: pp.nodules,
      mask: pp.mask,
      image: enhanced,
      timingsMs: { decode: frame.decodeMs ?? 0, preprocess: t1 - t0, inference: t2 - t1, postprocess: t3 - t2 },
      imaging,
      truth: frame.truth,
    };
  }
}
