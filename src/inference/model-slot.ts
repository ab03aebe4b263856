/**
 * Which model serves, and the one a swap replaced: loading (checked against its card's sha256),
 * swapping, committing after a health window, and reverting. The pipeline is not its business:
 * the caller installs what it returns.
 */
import type { Logger } from 'pino';
import { loadModelCard, sha256File, type ModelCard } from './model-card.js';
import { Segmenter } from './segmenter.js';

/** Which model files to run: the config's (factory) or an installed update slot's. */
export interface ModelLocation {
  modelPath: string;
  cardPath: string;
  /** bundle version; null for the factory model */
  version: string | null;
}

export interface LoadedModel {
  segmenter: Segmenter;
  card: ModelCard;
  sha256: string;
  location: ModelLocation;
}

/** How sessions are made; read at each load so a new config applies to the next model. */
export interface ModelRuntime {
  executionProviders: string[];
  threads: number;
}

export async function loadModel(
  location: ModelLocation,
  runtime: ModelRuntime,
  logger: Logger,
  card?: ModelCard,
): Promise<LoadedModel> {
  card ??= await loadModelCard(location.cardPath);
  const sha256 = await sha256File(location.modelPath);
  if (sha256 !== card.sha256) {
    throw new Error(
      `model ${location.modelPath} sha256 ${sha256.slice(0, 12)}… does not match its card ` +
        `(${card.sha256.slice(0, 12)}…)`,
    );
  }
  const segmenter = await Segmenter.create({
    modelPath: location.modelPath,
    card,
    executionProviders: runtime.executionProviders,
    intraOpThreads: runtime.threads,
    logger,
  });
  return { segmenter, card, sha256, location };
}

export class ModelSlot {
  private serving: LoadedModel | null = null;
  /** the model a swap replaced, kept until the new one passes its health window */
  private previous: LoadedModel | null = null;

  constructor(
    private readonly runtime: () => ModelRuntime,
    private readonly logger: Logger,
  ) {}

  /** The serving model; throws before the first load. */
  get current(): LoadedModel {
    if (!this.serving) throw new Error('model not loaded');
    return this.serving;
  }

  get loaded(): LoadedModel | null {
    return this.serving;
  }

  async load(location: ModelLocation): Promise<LoadedModel> {
    this.serving = await loadModel(location, this.runtime(), this.logger);
    return this.serving;
  }

  /** Load the model at `location` and make it current; the one it replaces is kept for revert(). */
  async swap(location: ModelLocation, card?: ModelCard): Promise<{ next: LoadedModel; old: LoadedModel }> {
    const next = await loadModel(location, this.runtime(), this.logger, card);
    const old = this.current;
    this.serving = next;
    const older = this.previous;
    this.previous = old;
    await older?.segmenter.release();
    return { next, old };
  }

  /** The swapped-in model passed its health window: free the one before it. */
  async commit(): Promise<void> {
    const old = this.previous;
    this.previous = null;
    await old?.segmenter.release();
  }

  /**
   * Back to the model before the last swap: the one still in memory, or, when the swap happened
   * before a restart (a trial resumed at start-up), the one at `fallback`. The failed model is
   * returned, not released: it may still be finishing a frame.
   */
  async revert(fallback: ModelLocation): Promise<{ back: LoadedModel; failed: LoadedModel }> {
    const failed = this.current;
    const back = this.previous ?? (await loadModel(fallback, this.runtime(), this.logger));
    this.previous = null;
    this.serving = back;
    return { back, failed };
  }

  async release(): Promise<void> {
    await this.serving?.segmenter.release();
    this.serving = null;
    await this.previous?.segmenter.release();
    this.previous = null;
  }
}

/** Whether two cards preprocess alike, so a model can change between two frames without a restart. */
export function samePreprocessing(a: ModelCard, b: ModelCard): boolean {
  return JSON.stringify(a.preprocessing) === JSON.stringify(b.preprocessing);
}
