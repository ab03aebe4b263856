import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { FrameProcessor } from '../src/inference/frame-processor.js';
import { ModelCardError, loadModelCard, parseModelCard } from '../src/inference/model-card.js';
import { decodeToModelGrey, enhance, preprocessImage, toInputTensorData } from '../src/inference/preprocess.js';
import { ModelMismatchError, Segmenter } from '../src/inference/segmenter.js';
import { phantomFramings } from '../src/tools/framing-check.js';
import { prepareDataset } from '../src/tools/prepare-dataset.js';
import { CARD, MODEL, SMALL_SPEC, logger, shippedCard, tempDir } from './helpers/fixtures.js';

async function testImage(): Promise<Buffer> {
  const w = 96,
    h = 80;
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const v = 60 + Math.round((40 * x) / w) + (((x >> 3) + (y >> 3)) % 2) * 20;
      px.fill(v, (y * w + x) * 3, (y * w + x) * 3 + 3);
    }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

function std(a: Uint8Array): number {
  const m = a.reduce((s, v) => s + v, 0) / a.length;
  return Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / a.length);
}

describe('preprocessing', () => {
  it('matches golden values (sharp/libvips pinned in package-lock)', async () => {
    const g = await preprocessImage(await testImage(), SMALL_SPEC);
    expect([g.width, g.height, g.data.length]).toEqual([64, 64, 4096]);
    expect([0, 100, 2000, 4095].map((i) => g.data[i])).toEqual([49, 81, 103, 85]);
    expect(createHash('sha256').update(g.data).digest('hex')).toBe(
      '8dfdfad438a67dc7e0ef57896986ac4aa1b3afe424dd254647bd6990e81cc48d',
    );
  });

  it('the single sharp pipeline equals blur then CLAHE as two explicit stages', async () => {
    const grey = await decodeToModelGrey(await testImage(), SMALL_SPEC);
    const raw = { raw: { width: 64, height: 64, channels: 1 as const } };
    const blurred = await sharp(grey.data, raw).blur(SMALL_SPEC.gaussianSigma).greyscale().raw().toBuffer();
    const twoStage = await sharp(blurred, raw)
      .clahe({ width: 16, height: 16, maxSlope: 3 })
      .greyscale()
      .raw()
      .toBuffer();
    expect(Buffer.from((await enhance(grey, SMALL_SPEC)).data).equals(twoStage)).toBe(true);
  });

  it('CLAHE raises contrast of a flat image; the Gaussian smooths it first', async () => {
    const grey = await decodeToModelGrey(await testImage(), SMALL_SPEC);
    const out = await enhance(grey, SMALL_SPEC);
    expect(std(out.data)).toBeGreaterThan(std(grey.data) * 1.5);
    const noSmoothing = await enhance(grey, { ...SMALL_SPEC, gaussianSigma: 0.3 });
    expect(Buffer.from(noSmoothing.data).equals(Buffer.from(out.data))).toBe(false);
    await expect(enhance({ width: 10, height: 10, data: new Uint8Array(100) }, SMALL_SPEC)).rejects.toThrow(/64x64/);
  });

  it('normalises grey levels with the card mean/std into a reused buffer', () => {
    const f = { width: 2, height: 2, data: Uint8Array.from([0, 255, 128, 64]) };
    const out = toInputTensorData(f, SMALL_SPEC);
    expect(Array.from(out).map((v) => Math.round(v * 1e4) / 1e4)).toEqual([-2, 2, 0.0078, -0.9961]);
    expect(toInputTensorData(f, SMALL_SPEC, out)).toBe(out);
  });

  it.each([
    ['local', SMALL_SPEC],
    ['tiles', { ...SMALL_SPEC, clahe: { ...SMALL_SPEC.clahe, method: 'tiles' as const } }],
  ])(
    'training data is prepared by this very code (prepare-dataset == preprocessImage, byte for byte; CLAHE %s)',
    async (_m, spec) => {
      const SMALL_SPEC = spec;
      const dir = await tempDir();
      await mkdir(join(dir, 'images'));
      await mkdir(join(dir, 'masks'));
      const img = await testImage();
      await writeFile(join(dir, 'images', 'a.png'), img);
      await sharp(Buffer.alloc(96 * 80, 255), { raw: { width: 96, height: 80, channels: 1 } })
        .png()
        .toFile(join(dir, 'masks', 'a.png'));
      await writeFile(join(dir, 'split.json'), JSON.stringify({ train: ['a'], val: [], test: [] }));
      await prepareDataset({ data: dir, spec: SMALL_SPEC, out: join(dir, 'out'), quiet: true });
      const prepared = await readFile(join(dir, 'out', 'images.u8'));
      const direct = await preprocessImage(img, SMALL_SPEC);
      expect(Buffer.from(direct.data).equals(prepared)).toBe(true);
      const masks = await readFile(join(dir, 'out', 'masks.u8'));
      expect(masks.every((v) => v === 1)).toBe(true);
      const meta = JSON.parse(await readFile(join(dir, 'out', 'meta.json'), 'utf8'));
      expect(meta.preprocessing).toEqual(SMALL_SPEC);
    },
  );

  it.skipIf(!existsSync('../shared/datasets/ddti/images/7_1.png'))(
    'on a real DDTI frame: prepared bytes equal the daemon path (skips without ../shared)',
    async () => {
      const card = await shippedCard();
      const bytes = await readFile('../shared/datasets/ddti/images/7_1.png');
      const a = await preprocessImage(bytes, card.preprocessing);
      const b = await enhance(await decodeToModelGrey(bytes, card.preprocessing), card.preprocessing);
      let maxDiff = 0;
      for (let i = 0; i < a.data.length; i++)
        maxDiff = Math.max(maxDiff, Math.abs((a.data[i] as number) - (b.data[i] as number)));
      expect(maxDiff).toBe(0);
    },
  );
});

describe('model card', () => {
  it('the shipped card validates and its sha256 matches the file', async () => {
    const card = await loadModelCard(CARD);
    const sha = createHash('sha256')
      .update(await readFile(MODEL))
      .digest('hex');
    expect(card.sha256).toBe(sha);
    expect(card.input.name).toBe('image');
    expect(card.output.name).toBe('logits');
  });

  it('rejects a card whose preprocessing disagrees with its input shape', async () => {
    const card = JSON.parse(await readFile(CARD, 'utf8'));
    card.input.shape = [null, 1, 128, 128];
    expect(() => parseModelCard(card, 'x.json')).toThrow(ModelCardError);
    delete card.threshold;
    expect(() => parseModelCard(card, 'x.json')).toThrow(/threshold/);
  });
});

describe('segmenter (real onnxruntime-node)', () => {
  it('falls back to CPU when a requested provider is not there, and reports it', async () => {
    const warnings: unknown[] = [];
    const spy = { ...logger, warn: (o: unknown) => warnings.push(o), info: () => {} } as unknown as typeof logger;
    const seg = await Segmenter.create({
      modelPath: MODEL,
      card: await shippedCard(),
      executionProviders: ['cuda', 'no-such-ep'],
      intraOpThreads: 1,
      logger: spy,
    });
    expect(seg.provider).toBe('cpu');
    expect(JSON.stringify(warnings)).toMatch(/cuda/);
    await seg.release();
  });

  it('refuses a model whose input does not match its card', async () => {
    const card = await shippedCard();
    const wrong = { ...card, input: { ...card.input, name: 'pixels' } };
    await expect(
      Segmenter.create({ modelPath: MODEL, card: wrong, executionProviders: ['cpu'], intraOpThreads: 1, logger }),
    ).rejects.toThrow(ModelMismatchError);
    const wrongShape = { ...card, input: { ...card.input, shape: [null, 1, 320, 320] as (number | null)[] } };
    await expect(
      Segmenter.create({ modelPath: MODEL, card: wrongShape, executionProviders: ['cpu'], intraOpThreads: 1, logger }),
    ).rejects.toThrow(/input shape/);
  });

  it('a corrupt model file is a clear error', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'bad.onnx'), 'not onnx');
    await expect(
      Segmenter.create({
        modelPath: join(dir, 'bad.onnx'),
        card: await shippedCard(),
        executionProviders: ['cpu'],
        intraOpThreads: 1,
        logger,
      }),
    ).rejects.toThrow(/could not load/);
  });

  it('the shipped model on the phantom: floors under the measured figures, per framing (README figures)', async () => {
    const card = await shippedCard();
    const seg = await Segmenter.create({
      modelPath: MODEL,
      card,
      executionProviders: ['cpu'],
      intraOpThreads: 2,
      logger,
    });
    // the daemon's rule: the card's minAreaPx (null), as `run`, `infer` and bench:phantom use
    const proc = new FrameProcessor(seg, { minAreaPx: null, pixelSpacingMm: null });
    const scores = await phantomFramings(proc, card.preprocessing, [1, 2, 3], 6);
    const mean = (k: 'roi' | 'screen'): number => scores.reduce((a, s) => a + s[k], 0) / scores.length;
    console.log(
      `phantom mean IoU over seeds 1-3: ROI ${mean('roi').toFixed(3)}, DDTI-like screen ${mean('screen').toFixed(3)}`,
    );
    // the ROI figure is what the daemon sees (src/tools/framing-check.ts compares the framings)
    expect(mean('roi')).toBeGreaterThan(PHANTOM_IOU_FLOOR);
    expect(mean('screen')).toBeGreaterThan(PHANTOM_SCREEN_IOU_FLOOR);
    await seg.release();
  }, 600_000); // 36 inferences and renders: seconds alone, minutes beside model training on 2 cores
});

/**
 * Measured with the shipped model by `node dist/src/tools/framing-check.js` (seeds 1-3; the ROI figure
 * is also `thyroid-edge infer --phantom 40 --phantom-seed S`); kept a margin below.
 */
// measured 0.680 with model v3 and the phantom whose lobe stands out from its surroundings as TG3K's glands do
// (seeds 1-3, 6 frames each; 0.628 with the darker lobe before, 0.603 with the earlier speckle, 0.554 when the lobe
// capped the nodules, 0.451 at the earlier 512x400 area, earlier models 0.178)
const PHANTOM_IOU_FLOOR = 0.5;
// measured 0.685 with model v3 (0.633 with the darker lobe, 0.611 with the earlier speckle, 0.605 when the lobe
// capped the nodules, 0.600 at 512x400; earlier 0.554)
const PHANTOM_SCREEN_IOU_FLOOR = 0.5;
