/**
 * Capture -> latest-frame slot -> processor. Two loops: the pump takes frames from the source as
 * fast as they come and puts them in the slot; the worker takes the newest and processes it.
 */
import type { Logger } from 'pino';
import type { Frame, FrameSource } from './frame-source.js';
import type { FrameResult } from '../inference/frame-processor.js';
import { Emitter } from '../util/emitter.js';
import { LatestFrameSlot } from './latest-frame-slot.js';
import { PipelineStats } from './pipeline-stats.js';

export interface FrameHandler {
  process(frame: Frame): Promise<FrameResult>;
}

export type ResultListener = (r: FrameResult) => void;

export class Pipeline {
  readonly stats = new PipelineStats();
  private readonly results: Emitter<FrameResult>;
  private readonly slot = new LatestFrameSlot<Frame>();
  private pumpDone: Promise<void> | null = null;
  private workerDone: Promise<void> | null = null;
  private running = false;
  lastError: string | null = null;

  constructor(
    private readonly source: FrameSource,
    private readonly handler: FrameHandler,
    private readonly logger: Logger,
  ) {
    this.results = new Emitter<FrameResult>('frame result', logger);
  }

  onResult(l: ResultListener): () => void {
    return this.results.on(l);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.pumpDone = this.pump();
    this.workerDone = this.work();
  }

  /** Finishes the frame in flight, then returns. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    await this.source.stop();
    const before = this.slot.dropped;
    this.slot.close(true);
    this.stats.dropped += this.slot.dropped - before;
    await Promise.allSettled([this.pumpDone, this.workerDone]);
  }

  /** Resolves when the source has ended and the last frame is processed. */
  async finished(): Promise<void> {
    await this.pumpDone;
    await this.workerDone;
  }

  get sourceStatus() {
    return this.source.status();
  }

  private async pump(): Promise<void> {
    try {
      for await (const frame of this.source.frames()) {
        if (!this.running) break;
        if (this.slot.put(frame)) {
          this.stats.dropped++;
          this.stats.droppedRate.mark();
        }
      }
    } catch (err) {
      this.lastError = `capture: ${(err as Error).message}`;
      this.logger.error({ err: this.lastError }, 'capture loop failed');
    } finally {
      this.slot.close();
    }
  }

  private async work(): Promise<void> {
    for (;;) {
      const frame = await this.slot.take();
      if (!frame) return;
      try {
        const r = await this.handler.process(frame);
        const t = r.timingsMs;
        this.stats.stages.decode.add(t.decode);
        this.stats.stages.preprocess.add(t.preprocess);
        this.stats.stages.inference.add(t.inference);
        this.stats.stages.postprocess.add(t.postprocess);
        this.stats.stages.total.add(t.decode + t.preprocess + t.inference + t.postprocess);
        this.stats.processed++;
        this.stats.processedRate.mark();
        this.results.emit(r);
      } catch (err) {
        // a frame that fails is counted and skipped; the pipeline keeps serving
        this.stats.errors++;
        this.lastError = `frame ${frame.seq}: ${(err as Error).message}`;
        this.logger.warn({ seq: frame.seq, err }, 'frame failed');
      }
    }
  }
}
