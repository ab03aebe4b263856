/**
 * Self-test of an installed bundle before it may become active. Models: the card agrees with the
 * manifest and the file, a fresh onnxruntime session loads it and matches the card, and every
 * golden frame reproduces its expected mask (IoU >= a floor) with no NaN. Configs: the merged
 * config passes the schema.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { frameFromImage } from '../capture/images-source.js';
import { applyRuntimePatch } from '../config/patch.js';
import type { Config } from '../config/schema.js';
import { FrameProcessor } from '../inference/frame-processor.js';
import { loadModelCard, type ModelCard } from '../inference/model-card.js';
import { decodeMask } from '../inference/preprocess.js';
import { iou } from '../inference/scoring.js';
import { Segmenter } from '../inference/segmenter.js';
import { BundleError, fileOfRole, type BundleManifest } from './manifest.js';

export interface ModelSelfTest {
  card: ModelCard;
  goldenIou: number[];
  msPerFrame: number;
}

export interface ModelSelfTestOptions {
  goldenMinIou: number;
  threads: number;
  logger: Logger;
}

export function modelFiles(dir: string, m: BundleManifest): { modelPath: string; cardPath: string } {
  return { modelPath: join(dir, fileOfRole(m, 'model').path), cardPath: join(dir, fileOfRole(m, 'card').path) };
}

export async function selfTestModel(dir: string, m: BundleManifest, o: ModelSelfTestOptions): Promise<ModelSelfTest> {
  const { modelPath, cardPath } = modelFiles(dir, m);
  const card = await loadModelCard(cardPath).catch((err: Error) => {
    throw new BundleError(err.message);
  });
  if (card.sha256 !== fileOfRole(m, 'model').sha256) throw new BundleError('card sha256 does not match the model file');
  if (JSON.stringify(card.input) !== JSON.stringify(m.input)) {
    throw new BundleError(
      `manifest.input ${JSON.stringify(m.input)} disagrees with the card's ${JSON.stringify(card.input)}`,
    );
  }
  let seg: Segmenter;
  try {
    // CPU only: the self-test judges the model, not the accelerator
    seg = await Segmenter.create({
      modelPath,
      card,
      executionProviders: ['cpu'],
      intraOpThreads: o.threads,
      logger: o.logger,
    });
  } catch (err) {
    throw new BundleError(`model fails to load: ${(err as Error).message}`);
  }
  try {
    const proc = new FrameProcessor(seg, { minAreaPx: 0, pixelSpacingMm: null });
    const goldenIou: number[] = [];
    let ms = 0;
    for (const [i, g] of (m.golden ?? []).entries()) {
      const frame = await frameFromImage(await readFile(join(dir, g.image)), card.preprocessing, i + 1);
      const t0 = performance.now();
      const r = await proc.process(frame).catch((err: Error) => {
        throw new BundleError(`golden frame ${g.image}: ${err.message}`);
      });
      ms += performance.now() - t0;
      const expected = await decodeMask(await readFile(join(dir, g.mask)), r.width, r.height);
      const score = iou(r.mask, expected);
      goldenIou.push(score);
      if (score < o.goldenMinIou) {
        throw new BundleError(
          `golden frame ${g.image}: IoU ${score.toFixed(3)} with its expected mask, below ${o.goldenMinIou}`,
        );
      }
    }
    return { card, goldenIou, msPerFrame: ms / Math.max(1, goldenIou.length) };
  } finally {
    await seg.release();
  }
}

/** The partial config a config bundle carries, merged over `base` and validated. */
export async function selfTestConfig(
  dir: string,
  m: BundleManifest,
  base: Config,
): Promise<{ overlay: unknown; config: Config }> {
  const file = join(dir, fileOfRole(m, 'config').path);
  let overlay: unknown;
  try {
    overlay = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new BundleError(`config file: ${(err as Error).message}`);
  }
  try {
    return { overlay, config: applyRuntimePatch(base, overlay, 'config bundle') };
  } catch (err) {
    throw new BundleError((err as Error).message);
  }
}
