/**
 * The controller: loads the model and its card, builds the source and the pipeline, starts and
 * stops them in order, and reports status. MQTT, live view and updates attach to it.
 */
import type { Logger } from 'pino';
import { createSource } from '../capture/create-source.js';
import type { CaptureStatus } from '../capture/frame-source.js';
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
  model: { name: string; sha256: string; file: string; provider: string } | null;
  capture: CaptureStatus | null;
  lastError: string | null;
  since: string;
}

export class Daemon {
  private segmenter: Segmenter | null = null;
  private pipeline: Pipeline | null = null;
  private processor: FrameProcessor | null = null;
  private card: ModelCard | null = null;
  private sha256 = '';
  private readonly listeners = new Set<ResultListener>();
  private readonly since = new Date().toISOString();

  constructor(
    private config: Config,
    private readonly logger: Logger,
  ) {}

  get currentConfig(): Config {
    return this.config;
  }

  async start(): Promise<void> {
    const cardPath = modelCardPath(this.config);
    this.card = await loadModelCard(cardPath);
    this.sha256 = await sha256File(this.config.model.path);
    if (this.sha256 !== this.card.sha256) {
      throw new Error(`model ${this.config.model.path} sha256 ${this.sha256.slice(0, 12)}… does not match its card (${this.card.sha256.slice(0, 12)}…)`);
    }
    this.segmenter = await Segmenter.create({
      modelPath: this.config.model.path,
      card: this.card,
      executionProviders: this.config.model.executionProviders,
      intraOpThreads: this.config.model.threads,
      logger: this.logger,
    });
    this.startPipeline();
  }

  private startPipeline(): void {
    if (!this.segmenter || !this.card) throw new Error('model not loaded');
    const source = createSource(this.config.capture, this.card.preprocessing, this.logger);
    const processor = new FrameProcessor(this.segmenter, {
      minAreaPx: this.config.postprocess.minAreaPx,
      pixelSpacingMm: this.config.postprocess.pixelSpacingMm,
    });
    this.processor = processor;
    const p = new Pipeline(source, processor, this.logger);
    p.onResult((r) => {
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
      this.processor.setOptions({ minAreaPx: next.postprocess.minAreaPx, pixelSpacingMm: next.postprocess.pixelSpacingMm });
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
        ? { name: this.card.name, sha256: this.sha256, file: this.config.model.path, provider: this.segmenter.provider }
        : null,
      capture: this.pipeline ? this.pipeline.sourceStatus : null,
      lastError: this.pipeline?.lastError ?? null,
      since: this.since,
    };
  }


  async stop(): Promise<void> {
    await this.pipeline?.stop();
    this.pipeline = null;
    await this.segmenter?.release();
    this.segmenter = null;
  }
}
