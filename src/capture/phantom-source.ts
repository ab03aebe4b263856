/**
 * The phantom as a FrameSource: renders at a configured rate, crops the ROI; preprocess.ts resizes it with the
 * card's kernel.
 */
import type { Preprocessing } from '../inference/model-card.js';
import { decodeMask, resizeGrey } from '../inference/preprocess.js';
import { sleep } from './backoff.js';
import type { CaptureStatus, Frame, FrameSource } from './frame-source.js';
import { PhantomGenerator, type PhantomOptions } from './phantom.js';

export interface PhantomSourceOptions extends PhantomOptions {
  /** frames per second; 0 = as fast as the consumer takes them */
  fps: number;
  /** stop after this many frames; 0 = endless */
  maxFrames: number;
}

export class PhantomSource implements FrameSource {
  readonly name = 'phantom';
  private readonly abort = new AbortController();
  private readonly gen: PhantomGenerator;
  private readonly st: CaptureStatus = {
    state: 'idle',
    source: 'phantom',
    framesCaptured: 0,
    badFrames: 0,
    restarts: 0,
  };

  constructor(
    private readonly o: PhantomSourceOptions,
    private readonly spec: Preprocessing,
  ) {
    this.gen = new PhantomGenerator(o);
  }

  status(): CaptureStatus {
    return { ...this.st };
  }

  /** Render frame `index` (0-based) without pacing: used by tests and the bench. */
  async renderFrame(index: number): Promise<Frame> {
    const t0 = performance.now();
    const { screen, mask } = this.gen.render(index);
    const { roi, screenWidth, screenHeight } = this.o;
    const grey = await resizeGrey({ width: screenWidth, height: screenHeight, data: screen }, this.spec, roi);
    // the truth is rendered at ROI size (0/1); scale to 0/255 and resize it like a label
    const truth = await decodeMask(
      mask.map((v) => v * 255),
      this.spec.width,
      this.spec.height,
      { width: roi.width, height: roi.height },
    );
    return {
      seq: index + 1,
      capturedAt: Date.now(),
      width: grey.width,
      height: grey.height,
      data: grey.data,
      roi,
      sourceWidth: screenWidth,
      sourceHeight: screenHeight,
      truth,
      decodeMs: performance.now() - t0,
    };
  }

  /**
   * Ground truth without rendering: the nodules in view in frame `index` (seq - 1), with which
   * appearance of each it is, for code that scores detections or alerts against the phantom.
   */
  schedule(index: number): { id: number; appearance: number; scale: number }[] {
    return this.gen.schedule(index);
  }

  /** The whole screen including the header band (for calibrate). */
  renderScreen(index: number): Uint8Array {
    return this.gen.render(index).screen;
  }

  async *frames(): AsyncIterable<Frame> {
    const period = this.o.fps > 0 ? 1000 / this.o.fps : 0;
    let next = performance.now();
    let i = 0;
    this.st.state = 'running';
    while (!this.abort.signal.aborted && (this.o.maxFrames === 0 || i < this.o.maxFrames)) {
      if (period) {
        await sleep(Math.max(0, next - performance.now()), this.abort.signal);
        next = Math.max(next + period, performance.now() - period);
        if (this.abort.signal.aborted) break;
      }
      const f = await this.renderFrame(i++);
      this.st.framesCaptured++;
      yield f;
    }
    this.st.state = this.abort.signal.aborted ? 'stopped' : 'ended';
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.st.state = 'stopped';
  }
}
