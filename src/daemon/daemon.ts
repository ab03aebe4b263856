/**
 * The controller: the serving model (ModelSlot) and the capture pipeline, started and stopped in
 * order; a model swap lands between two frames. MQTT, the live view and updates attach to it
 * through the narrow interfaces they declare (MqttHost, LiveHost, UpdateHost).
 */
import type { Logger } from 'pino';
import type { CaptureConfig } from '../capture/config.js';
import { createSource } from '../capture/create-source.js';
import type { Rect } from '../capture/frame-source.js';
import { grabFullFrame, type FullFrame } from '../capture/grab.js';
import { Pipeline } from '../capture/pipeline.js';
import type { PipelineSummary } from '../capture/pipeline-stats.js';
import { modelCardPath } from '../config/load.js';
import { restartsPipeline } from '../config/patch.js';
import type { Config } from '../config/schema.js';
import { FrameProcessor, type FrameResult } from '../inference/frame-processor.js';
import type { GateState } from '../inference/imaging-gate.js';
import type { ModelCard } from '../inference/model-card.js';
import { ModelSlot, samePreprocessing, type LoadedModel, type ModelLocation } from '../inference/model-slot.js';
import type { DeviceStatus, MqttHost } from '../mqtt/host.js';
import { Emitter } from '../util/emitter.js';
import { VERSION } from '../version.js';

export class Daemon implements MqttHost {
  private readonly models: ModelSlot;
  /** the model to start with (a restart reloads it; swaps after that live in the model slot) */
  private readonly initial: ModelLocation;
  private lastNodule: number | null = null;
  private lastRoi: Rect | null = null;
  /** the gate's state on the latest frame (kept as is: status() reads it once a second, frames come faster) */
  private lastImaging: GateState | null = null;
  /** cuts the imaging gate has seen (status/telemetry: a field check of imagingGate.viewChangeLevel) */
  private viewChanges = 0;
  private viewRescales = 0;
  private pipeline: Pipeline | null = null;
  /** frames of the pipelines before this one: the watchdog's count must not go back at a restart */
  private readonly earlier = { processed: 0, errors: 0 };
  /** the restart in progress, if any: restarts queue behind it */
  private restarts: Promise<void> = Promise.resolve();
  private processor: FrameProcessor | null = null;
  private readonly results: Emitter<FrameResult>;
  private readonly since = new Date().toISOString();

  constructor(
    private config: Config,
    private readonly logger: Logger,
    location?: ModelLocation,
  ) {
    this.initial = location ?? { modelPath: config.model.path, cardPath: modelCardPath(config), version: null };
    this.models = new ModelSlot(() => this.config.model, logger);
    this.results = new Emitter<FrameResult>('frame result', logger);
  }

  get currentConfig(): Config {
    return this.config;
  }

  async start(): Promise<void> {
    await this.models.load(this.initial);
    this.startPipeline();
  }

  /** Make `m` the serving model: between two frames when the preprocessing is the same, else by a pipeline restart. */
  private async install(m: LoadedModel, before: ModelCard): Promise<void> {
    if (samePreprocessing(m.card, before) && this.processor) this.processor.setSegmenter(m.segmenter);
    else await this.restartPipeline();
  }

  /** Switch to another model without stopping capture; the old one is kept for revertModel(). */
  async swapModel(location: ModelLocation, card?: ModelCard): Promise<void> {
    const { next, old } = await this.models.swap(location, card);
    await this.install(next, old.card);
    this.logger.info({ model: location.modelPath, version: location.version }, 'model swapped');
  }

  /** The swapped-in model passed its health window: free the old one. */
  async commitModel(): Promise<void> {
    await this.models.commit();
  }

  /** Back to the model before the last swap (or the one at `fallback` after a restart). */
  async revertModel(fallback: ModelLocation): Promise<void> {
    const { back, failed } = await this.models.revert(fallback);
    await this.install(back, failed.card);
    // the failed model may still be finishing a frame: release it after the next result
    const off = this.onResult(() => {
      off();
      void failed.segmenter.release();
    });
    this.logger.warn({ model: back.location.modelPath, version: back.location.version }, 'model reverted');
  }

  /**
   * Frames processed and failed since the daemon started, across pipeline restarts; cheap (no percentile sort):
   * the watchdog reads them every tick. A count that went back to 0 at each restart would look like no progress,
   * so a restart (set_config, a model swap, request/restart_pipeline) could cost a watchdog kill.
   */
  pipelineCounters(): { processed: number; errors: number } | null {
    if (!this.pipeline) return null;
    return {
      processed: this.earlier.processed + this.pipeline.stats.processed,
      errors: this.earlier.errors + this.pipeline.stats.errors,
    };
  }

  /**
   * One full, uncropped capture frame and the ROI in use, for the calibrate view. A V4L2 device
   * opens only once, so its pipeline pauses for the grab (a second or so) and resumes.
   */
  async grabFullFrame(): Promise<{ frame: FullFrame; roi: Rect | null }> {
    const capture: CaptureConfig = this.config.capture;
    const paused = capture.source === 'v4l2' ? this.pipeline : null;
    await paused?.stop();
    try {
      return { frame: await grabFullFrame(capture), roi: this.lastRoi ?? capture.roi };
    } finally {
      // resume only what this grab paused: a restart (set_config) or stop meanwhile owns the pipeline now
      if (paused !== null && this.pipeline === paused) this.startPipeline();
    }
  }

  frameErrors(): number {
    return this.pipeline?.stats.errors ?? 0;
  }

  inferenceP50(): number | null {
    return this.pipeline?.stats.stages.inference.percentile(50) ?? null;
  }

  lastNoduleAt(): number | null {
    return this.lastNodule;
  }

  private startPipeline(): void {
    const model = this.models.current;
    const source = createSource(this.config.capture, model.card.preprocessing, this.logger);
    const processor = new FrameProcessor(model.segmenter, {
      minAreaPx: this.config.postprocess.minAreaPx,
      pixelSpacingMm: this.config.postprocess.pixelSpacingMm,
      gate: this.config.imagingGate,
    });
    this.processor = processor;
    const p = new Pipeline(source, processor, this.logger);
    p.onResult((r) => {
      if (r.nodules.length) this.lastNodule = r.processedAt;
      this.lastRoi = r.roi;
      this.lastImaging = r.imaging;
      if (r.imaging.viewChanged) this.viewChanges++;
      if (r.imaging.rescaled !== null) this.viewRescales++;
      if (this.logger.isLevelEnabled('debug')) {
        this.logger.debug({ seq: r.seq, nodules: r.nodules.length, ms: r.timingsMs }, 'frame processed');
      }
      this.results.emit(r);
    });
    if (this.pipeline) {
      this.earlier.processed += this.pipeline.stats.processed;
      this.earlier.errors += this.pipeline.stats.errors;
    }
    this.pipeline = p;
    p.start();
    this.logger.info({ source: source.name }, 'pipeline started');
  }

  /**
   * Stop capture and processing (the in-flight frame finishes), then start again. Restarts run one at a time: two
   * that overlapped (a set_config and a model swap) would each start a pipeline, and the first would keep running,
   * unstopped, holding the capture device.
   */
  restartPipeline(config?: Config): Promise<void> {
    const run = this.restarts.then(async () => {
      await this.pipeline?.stop();
      if (config) this.config = config;
      this.startPipeline();
    });
    this.restarts = run.catch(() => undefined);
    return run;
  }

  /** Apply a validated config: the pipeline restarts with it (model settings need a restart). */
  async applyConfig(next: Config): Promise<void> {
    if (!restartsPipeline(this.config, next) && this.processor) {
      // only post-processing (or alert/log settings) changed: no need to stop capture
      this.config = next;
      this.processor.setOptions({
        minAreaPx: next.postprocess.minAreaPx,
        pixelSpacingMm: next.postprocess.pixelSpacingMm,
        gate: next.imagingGate,
      });
      this.logger.info('applied new config without restarting capture');
      return;
    }
    this.logger.info('applying new config: restarting the pipeline');
    await this.restartPipeline(next);
  }

  nextResult(timeoutMs: number): Promise<FrameResult> {
    return this.results.next(timeoutMs, 'frame processed');
  }

  onResult(l: (r: FrameResult) => void): () => void {
    return this.results.on(l);
  }

  /** Frame counters and per-stage percentiles (sorts the sample windows: call it at telemetry pace). */
  pipelineStats(): PipelineSummary | null {
    return this.pipeline ? this.pipeline.stats.summary() : null;
  }

  /** Cheap: model and capture state (the status topic checks it every second). */
  status(): DeviceStatus {
    const m = this.models.loaded;
    return {
      version: VERSION,
      deviceId: this.config.deviceId,
      model: m
        ? {
            name: m.card.name,
            sha256: m.sha256,
            file: m.location.modelPath,
            provider: m.segmenter.provider,
            version: m.location.version,
          }
        : null,
      capture: this.pipeline ? this.pipeline.sourceStatus : null,
      lastError: this.pipeline?.lastError ?? null,
      imaging:
        this.pipeline && this.lastImaging
          ? {
              imaging: this.lastImaging.imaging,
              reason: this.lastImaging.reason,
              viewChanges: this.viewChanges,
              viewRescales: this.viewRescales,
            }
          : null,
      since: this.since,
    };
  }

  async stop(): Promise<void> {
    await this.restarts; // a restart in progress would otherwise start a pipeline after this stopped the last one
    await this.pipeline?.stop();
    this.pipeline = null;
    await this.models.release();
  }
}
