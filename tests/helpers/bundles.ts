/** Builds real signed bundles for the update tests: fixture or shipped models, golden frames, config overlays. */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { PhantomSource } from '../../src/capture/phantom-source.js';
import { DEFAULT_PHANTOM } from '../../src/capture/phantom.js';
import { sha256File } from '../../src/inference/model-card.js';
import { signBundle, writeGolden } from '../../src/updates/bundle-writer.js';
import type { KeyPair } from '../../src/updates/signing.js';
import { CARD, MODEL, logger, shippedCard, tempDir } from './fixtures.js';

export const FIXTURE_MODELS = 'tests/fixtures/models';
export const fixtureModel = (name: 'brightness-a' | 'brightness-b' | 'nan-output' | 'wrong-input') =>
  join(FIXTURE_MODELS, `${name}.onnx`);

/** n phantom ROI frames as PNG files, the way a capture would deliver them. */
export async function phantomPngs(n: number, seed = 3): Promise<string[]> {
  const card = await shippedCard();
  const src = new PhantomSource(
    { ...DEFAULT_PHANTOM, seed, nodules: 1, cycleFrames: 0, fps: 0, maxFrames: n },
    card.preprocessing,
  );
  const dir = await tempDir('te-golden-');
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const f = await src.renderFrame(i * 7);
    const p = join(dir, `frame-${i}.png`);
    await writeFile(
      p,
      await sharp(Buffer.from(f.data), { raw: { width: f.width, height: f.height, channels: 1 } })
        .png()
        .toBuffer(),
    );
    out.push(p);
  }
  return out;
}

export interface ModelBundleSpec {
  /** ONNX file; its card is the shipped card with this file's name, size and sha256 */
  model: string;
  version: string;
  key: KeyPair;
  golden?: string[];
  /** replace the model after the golden masks were made and before signing (wrong-input, load failures) */
  swapModelFor?: string | Buffer;
  minDaemonVersion?: string;
  /** a card preprocessing other than the shipped model's (a switch then restarts the pipeline) */
  preprocessing?: Record<string, unknown>;
}

export const bundleUrl = (dir: string) => pathToFileURL(join(dir, 'manifest.json')).href;

export async function writeCardFor(
  modelFile: string,
  cardFile: string,
  name: string,
  preprocessing?: Record<string, unknown>,
): Promise<void> {
  const card = JSON.parse(await readFile(CARD, 'utf8')) as Record<string, unknown>;
  const bytes = await readFile(modelFile);
  Object.assign(card, { name, file: 'model.onnx', sha256: await sha256File(modelFile), fileBytes: bytes.length });
  if (preprocessing) card.preprocessing = preprocessing;
  await writeFile(cardFile, JSON.stringify(card, null, 1));
}

export async function makeModelBundle(s: ModelBundleSpec): Promise<string> {
  const dir = await tempDir('te-bundle-');
  const model = join(dir, 'model.onnx');
  await copyFile(s.model, model);
  await writeCardFor(model, join(dir, 'model.json'), `test-${s.version}`, s.preprocessing);
  await writeGolden(dir, s.golden ?? (await phantomPngs(2)), logger);
  if (s.swapModelFor !== undefined) {
    if (typeof s.swapModelFor === 'string') await copyFile(s.swapModelFor, model);
    else await writeFile(model, s.swapModelFor);
    await writeCardFor(model, join(dir, 'model.json'), `test-${s.version}`, s.preprocessing);
  }
  await signBundle(dir, {
    kind: 'model',
    name: 'thyroid-nodule',
    version: s.version,
    minDaemonVersion: s.minDaemonVersion ?? '0.1.0',
    privateKeyPem: s.key.privateKeyPem,
  });
  return dir;
}

export async function makeConfigBundle(overlay: unknown, version: string, key: KeyPair): Promise<string> {
  const dir = await tempDir('te-cfgbundle-');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(overlay));
  await signBundle(dir, {
    kind: 'config',
    name: 'site-settings',
    version,
    minDaemonVersion: '0.1.0',
    privateKeyPem: key.privateKeyPem,
  });
  return dir;
}

export { MODEL };
