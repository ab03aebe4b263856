/**
 * onnxruntime-node session for the segmentation model: ordered execution providers with fallback
 * to CPU, the model's input/output checked against its card at load.
 */
import * as ort from 'onnxruntime-node';
import type { Logger } from 'pino';
import { basename } from 'node:path';
import type { ModelCard } from './model-card.js';
import { int8SaturationRisk } from './int8-saturation.js';

export class ModelMismatchError extends Error {}

export interface SegmenterOptions {
  modelPath: string;
  card: ModelCard;
  executionProviders: string[];
  intraOpThreads: number;
  logger: Logger;
}

export interface Segmentation {
  /** logits [H*W] for the single frame */
  logits: Float32Array;
  width: number;
  height: number;
}

export class Segmenter {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly card: ModelCard,
    readonly provider: string,
    readonly modelPath: string,
  ) {}

  /** Try each provider in order; the first that creates a session wins. CPU is always last. */
  static async create(o: SegmenterOptions): Promise<Segmenter> {
    const wanted = o.executionProviders.length ? [...o.executionProviders] : ['cpu'];
    if (!wanted.includes('cpu')) wanted.push('cpu');
    const errors: string[] = [];
    for (const ep of wanted) {
      try {
        const session = await ort.InferenceSession.create(o.modelPath, {
          executionProviders: [ep],
          intraOpNumThreads: o.intraOpThreads,
          interOpNumThreads: 1,
          graphOptimizationLevel: 'all',
        });
        try {
          checkAgainstCard(session, o.card, o.modelPath);
        } catch (err) {
          await session.release(); // a refused model must not keep its memory
          throw err;
        }
        if (errors.length) {
          o.logger.warn({ requested: wanted, active: ep, errors }, `execution provider fallback: running on ${ep}`);
        }
        o.logger.info({ model: basename(o.modelPath), provider: ep, threads: o.intraOpThreads }, 'model loaded');
        const risk = ep === 'cpu' ? await int8SaturationRisk(process.arch, o.card) : null;
        if (risk) o.logger.warn({ model: basename(o.modelPath) }, risk);
        return new Segmenter(session, o.card, ep, o.modelPath);
      } catch (err) {
        if (err instanceof ModelMismatchError) throw err;
        errors.push(`${ep}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    throw new Error(`could not load ${o.modelPath} with any execution provider: ${errors.join('; ')}`);
  }

  async run(input: Float32Array): Promise<Segmentation> {
    const [, , h, w] = this.card.input.shape as [null, number, number, number];
    const tensor = new ort.Tensor('float32', input, [1, 1, h, w]);
    const out = await this.session.run({ [this.card.input.name]: tensor });
    const logits = out[this.card.output.name];
    if (!logits) throw new Error(`model produced no output "${this.card.output.name}"`);
    const data = logits.data as Float32Array;
    if (data.length !== h * w) throw new Error(`model output has ${data.length} values, expected ${h * w}`);
    // a broken model (or update) shows here first: NaN would threshold to "no nodule" silently
    for (let i = 0; i < data.length; i += 1) if (Number.isNaN(data[i])) throw new Error('model output contains NaN');
    return { logits: data, width: w, height: h };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function checkAgainstCard(session: ort.InferenceSession, card: ModelCard, path: string): void {
  const problems: string[] = [];
  if (!session.inputNames.includes(card.input.name))
    problems.push(`input "${card.input.name}" missing (model has ${session.inputNames.join(', ')})`);
  if (!session.outputNames.includes(card.output.name))
    problems.push(`output "${card.output.name}" missing (model has ${session.outputNames.join(', ')})`);
  const meta = (
    session as unknown as {
      inputMetadata?: ArrayLike<{ name: string; isTensor: boolean; shape?: (number | string)[] }>;
    }
  ).inputMetadata;
  if (meta) {
    for (const m of Array.from(meta)) {
      if (m.name !== card.input.name || !m.isTensor || !m.shape) continue;
      const expect = card.input.shape;
      const ok = m.shape.length === expect.length && m.shape.every((d, i) => expect[i] === null || d === expect[i]);
      if (!ok)
        problems.push(`input shape ${JSON.stringify(m.shape)} differs from the card's ${JSON.stringify(expect)}`);
    }
  }
  if (problems.length) throw new ModelMismatchError(`model ${path} does not match its card: ${problems.join('; ')}`);
}
