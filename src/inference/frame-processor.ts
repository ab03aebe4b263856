/** One frame through preprocess -> model -> post-process, with per-stage timings. */
import type { Frame } from '../capture/frame-source.js';
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
  truth?: Uint8Array;
}

/** The card's frame rule, for cards written before it existed (the daemon's old default). */
export const LEGACY_MIN_AREA_PX = 40;

export interface ProcessorOptions {
  /** null: the model card's decision rule (its minAreaPx, chosen on val with the model) */
  minAreaPx: number | null;
  pixelSpacingMm: { x: number; y: number } | null;
}

export class FrameProcessor {
  private input: Float32Array | undefined;
  /** made once for the model's spec ("tiles" method): a frame then allocates only its output */
  private fast: FastEnhancer | undefined;

  constructor(
    private segmenter: Segmenter,
    private opts: ProcessorOptions,
  ) {}

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
  }

  get spec(): Preprocessing {
    return this.segmenter.card.preprocessing;
  }

  async process(frame: Frame): Promise<FrameResult> {
    const segmenter = this.segmenter; // one model per frame, even if a swap lands meanwhile
    const spec = segmenter.card.preprocessing;
    const t0 = performance.now();
    if (spec.clahe.method === 'tiles' && !this.fast) this.fast = fastEnhancerFor(spec);
    // an ffmpeg frame arrives at ROI size: resized with the card's kernel, as training data was
    const grey = await toModelSize({ width: frame.width, height: frame.height, data: frame.data }, spec);
    const enhanced = await enhance(grey, spec, this.fast);
    this.input = toInputTensorData(enhanced, spec, this.input);
    const t1 = performance.now();
    const seg = await segmenter.run(this.input);
    const t2 = performance.now();
    const pp = postprocess(seg.logits, { width: seg.width, height: seg.height, roi: frame.roi }, {
      threshold: segmenter.card.threshold,
      minAreaPx: this.opts.minAreaPx ?? segmenter.card.decision?.minAreaPx ?? LEGACY_MIN_AREA_PX,
      pixelSpacingMm: this.opts.pixelSpacingMm,
    });
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
      truth: frame.truth,
    };
  }
}
