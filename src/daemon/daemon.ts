/**
 * The controller: loads the model and its card, builds the source and the pipeline, starts and
 * stops them in order, and reports status. MQTT, live view and updates attach to it.
 */
import type { Logger } from 'pino';
import { createSource } from '../capture/create-source.js';
import type { CaptureStatus, Rect } from '../capture/frame-source.js';
import { grabFullFrame, type FullFrame } from '../capture/grab.js';
import { FrameProcessor, type FrameResult } from '../inference/frame-processor.js';
import { loadModelCard, sha256File, type ModelCard } from '../inference/model-card.js';
import { Segmenter } from '../inference/segmenter.js';
import { VERSION } from '../version.js';
import { modelCardPath } from './config/load.js';
import type { Config } from './config/schema.js';
import { Pipeline, type ResultListener } from './pipeline.js';

export interface DaemonStatus {
  version: string;
  deviceId: string;
  model: { name: string; sha256: string; file: string; provider: string; version: string | null } | null;
  capture: CaptureStatus | null;
  lastError: string | null;
  /** the imaging gate on the latest frame; null before the first */
  imaging: { imaging: boolean; reason: 'no_signal' | 'reverberation' | 'frozen' | null } | null;
  since: string;
}

/** Which model files to run: the config's (factory) or an installed update slot's. */
export interface ModelLocation {
  modelPath: string;
  cardPath: string;
  /** bundle version; null for the factory model */
  version: string | null;
}

interface LoadedModel {
  segmenter: Segmenter;
  card: ModelCard;
  sha256: string;
  location: ModelLocation;
}

export class Daemon {
  private segmenter: Segmenter | null = null;
  private location: ModelLocation;
  /** the model a swap replaced, kept until the new one passes its health window */
  private previous: LoadedModel | null = null;
  private lastNodule: number | null = null;
  private lastRoi: Rect | null = null;
  private lastImaging: DaemonStatus['imaging'] = null;
  private pipeline: Pipeline | null = null;
  private processor: FrameProcessor | null = null;
  private card: ModelCard | null = null;
  private sha256 = '';
  private readonly listeners = new Set<ResultListener>();
  private readonly since = new Date().toISOString();

  constructor(
    private config: Config,
    private readonly logger: Logger,
    location?: ModelLocation,
  ) {
    this.location = location ?? { modelPath: config.model.path, cardPath: modelCardPath(config), version: null };
  }

  get currentConfig(): Config {
    return this.config;
  }

  async start(): Promise<void> {
    const m = await this.loadModel(this.location);
    this.segmenter = m.segmenter;
    this.card = m.card;
    this.sha256 = m.sha256;
    this.startPipeline();
  }

  private async loadModel(location: ModelLocation, card?: ModelCard): Promise<LoadedModel> {
    card ??= await loadModelCard(location.cardPath);
    const sha256 = await sha256File(location.modelPath);
    if (sha256 !== card.sha256) {
      throw new Error(`model ${location.modelPath} sha256 ${sha256.slice(0, 12)}… does not match its card (${card.sha256.slice(0, 12)}…)`);
    }
    const segmenter = await Segmenter.create({
      modelPath: location.modelPath,
      card,
      executionProviders: this.config.model.executionProviders,
      intraOpThreads: this.config.model.threads,
      logger: this.logger,
    });
    return { segmenter, card, sha256, location };
  }

  private current(): LoadedModel {
    if (!this.segmenter || !this.card) throw new Error('model not loaded');
    return { segmenter: this.segmenter, card: this.card, sha256: this.sha256, location: this.location };
  }

  /** Make `m` the serving model: between two frames when the preprocessing is the same, else by a pipeline restart. */
  private async install(m: LoadedModel): Promise<void> {
    const samePre = this.card !== null && JSON.stringify(m.card.preprocessing) === JSON.stringify(this.card.preprocessing);
    this.segmenter = m.segmenter;
    this.card = m.card;
    this.sha256 = m.sha256;
    this.location = m.location;
    if (samePre && this.processor) this.processor.setSegmenter(m.segmenter);
    else await this.restartPipeline();
  }

  /** Switch to another model without stopping capture; the old one is kept for revertModel(). */
  async swapModel(location: ModelLocation, card?: ModelCard): Promise<void> {
    const next = await this.loadModel(location, card);
    const old = this.current();
    await this.install(next);
    if (this.previous) await this.previous.segmenter.release();
    this.previous = old;
    this.logger.info({ model: location.modelPath, version: location.version }, 'model swapped');
  }

  /** The swapped-in model passed its health window: free the old one. */
  async commitModel(): Promise<void> {
    const old = this.previous;
    this.previous = null;
    await old?.segmenter.release();
  }

  /**
   * Back to the model before the last swap: the one still in memory, or, when the swap happened
   * before a restart (a trial resumed at start-up), the one at `fallback`.
   */
  async revertModel(fallback: ModelLocation): Promise<void> {
    const failed = this.current();
    const back = this.previous ?? (await this.loadModel(fallback));
    this.previous = null;
    await this.install(back);
    // the failed model may still be finishing a frame: release it after the next result
    const off = this.onResult(() => {
      off();
      void failed.segmenter.release();
    });
    this.logger.warn({ model: back.location.modelPath, version: back.location.version }, 'model reverted');
  }

  /** Cheap counters (no percentile sort): the watchdog reads them every tick. */
  pipelineCounters(): { processed: number; errors: number } | null {
    return this.pipeline ? { processed: this.pipeline.stats.processed, errors: this.pipeline.stats.errors } : null;
  }

  /**
   * One full, uncropped capture frame and the ROI in use, for the calibrate view. A V4L2 device
   * opens only once, so its pipeline pauses for the grab (a second or so) and resumes.
   */
  async grabFullFrame(): Promise<{ frame: FullFrame; roi: Rect | null }> {
    const exclusive = this.config.capture.source === 'v4l2' && this.pipeline !== null;
    if (exclusive) await this.pipeline?.stop();
    try {
      return { frame: await grabFullFrame(this.config.capture), roi: this.lastRoi ?? this.config.capture.roi };
    } finally {
      if (exclusive) this.startPipeline();
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
    if (!this.segmenter || !this.card) throw new Error('model not loaded');
    const source = createSource(this.config.capture, this.card.preprocessing, this.logger);
    const processor = new FrameProcessor(this.segmenter, {
      minAreaPx: this.config.postprocess.minAreaPx,
      pixelSpacingMm: this.config.postprocess.pixelSpacingMm,
      gate: this.config.imagingGate,
    });
    this.processor = processor;
    const p = new Pipeline(source, processor, this.logger);
    p.onResult((r) => {
      if (r.nodules.length) this.lastNodule = r.processedAt;
      this.lastRoi = r.roi;
      this.lastImaging = { imaging: r.imaging.imaging, reason: r.imaging.reason };
      if (this.logger.isLevelEnabled('debug')) {
        this.logger.debug({ seq: r.seq, nodules: r.nodules.length, ms: r.timingsMs }, 'frame processed');
      }
      for (const l of this.listeners) l(r);
    });
    this.pipeline = p;
    p.start();
    this.logger.info({ source: source.name }, 'pipeline started');
  }

  /** Stop capture and processing (the in-flight frame finishes), then start again. */
  async restartPipeline(config?: Config): Promise<void> {
    await this.pipeline?.stop();
    if (config) this.config = config;
    this.startPipeline();
  }

  /** Apply a validated config: the pipeline restarts with it (model settings need a restart). */
  async applyConfig(next: Config): Promise<void> {
    const sameCapture = JSON.stringify(next.capture) === JSON.stringify(this.config.capture);
    if (sameCapture && this.processor) {
      // only post-processing (or alert/log settings) changed: no need to stop capture
      this.config = next;
      this.processor.setOptions({ minAreaPx: next.postprocess.minAreaPx, pixelSpacingMm: next.postprocess.pixelSpacingMm, gate: next.imagingGate });
      this.logger.info('applied new config without restarting capture');
      return;
    }
    this.logger.info('applying new config: restarting the pipeline');
    await this.restartPipeline(next);
  }

  /** The next processed frame, or an error after timeoutMs. */
  nextResult(timeoutMs: number): Promise<FrameResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`no frame processed within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onResult((r) => {
        clearTimeout(timer);
        off();
        resolve(r);
      });
    });
  }

  onResult(l: (r: FrameResult) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Frame counters and per-stage percentiles (sorts the sample windows: call it at telemetry pace). */
  pipelineStats(): ReturnType<Pipeline['stats']['summary']> | null {
    return this.pipeline ? this.pipeline.stats.summary() : null;
  }

  /** Cheap: model and capture state (the status topic checks it every second). */
  status(): DaemonStatus {
    return {
      version: VERSION,
      deviceId: this.config.deviceId,
      model: this.card && this.segmenter
        ? { name: this.card.name, sha256: this.sha256, file: this.location.modelPath, provider: this.segmenter.provider, version: this.location.version }
        : null,
      capture: this.pipeline ? this.pipeline.sourceStatus : null,
      lastError: this.pipeline?.lastError ?? null,
      imaging: this.pipeline ? this.lastImaging : null,
      since: this.since,
    };
  }


  async stop(): Promise<void> {
    await this.pipeline?.stop();
    this.pipeline = null;
    await this.segmenter?.release();
    this.segmenter = null;
    await this.previous?.segmenter.release();
    this.previous = null;
  }
}
