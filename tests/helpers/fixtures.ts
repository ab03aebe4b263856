/** Shared test fixtures: the shipped model card, a logger, temp dirs, a phantom. */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModelCard, type ModelCard, type Preprocessing } from '../../src/inference/model-card.js';
import { silentLogger } from '../../src/util/logger.js';

export const MODEL = 'models/thyroid-nodule-int8.onnx';
export const CARD = 'models/thyroid-nodule-int8.json';
export const logger = silentLogger();

export async function shippedCard(): Promise<ModelCard> {
  return loadModelCard(CARD);
}

export function tempDir(prefix = 'te-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export const SMALL_SPEC: Preprocessing = {
  width: 64,
  height: 64,
  resizeKernel: 'linear',
  gaussianSigma: 1,
  clahe: { tileWidth: 16, tileHeight: 16, maxSlope: 3 },
  mean: 0.5,
  std: 0.25,
};
