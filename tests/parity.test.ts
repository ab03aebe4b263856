/**
 * One preprocessing, in practice: the same frames through every source path (an image file, a video
 * file as lossless grey ffv1, as MJPEG and as limited-range YUYV, and the phantom) reach the model
 * as the input tensor training data preparation (src/tools/prepare-dataset.ts) makes of them, within
 * one grey level. For a lossy encoding the reference is the decoded frame's true pixels: its Y plane,
 * read natively and expanded to full range here, not by the code under test.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FfmpegSource } from '../src/capture/ffmpeg-source.js';
import { createFileSource } from '../src/capture/file-source.js';
import type { Frame, FrameSource, Rect } from '../src/capture/frame-source.js';
import { ImagesSource } from '../src/capture/images-source.js';
import { DEFAULT_PHANTOM } from '../src/capture/phantom.js';
import { PhantomSource } from '../src/capture/phantom-source.js';
import { FrameProcessor } from '../src/inference/frame-processor.js';
import type { ModelCard, Preprocessing } from '../src/inference/model-card.js';
import { toInputTensorData, type GreyFrame } from '../src/inference/preprocess.js';
import { Segmenter } from '../src/inference/segmenter.js';
import { prepareDataset } from '../src/tools/prepare-dataset.js';
import { MODEL, logger, shippedCard, tempDir } from './helpers/fixtures.js';

const DDTI = '../shared/datasets/ddti';
const HAVE_DDTI = existsSync(join(DDTI, 'split.json'));
if (!HAVE_DDTI) console.warn(`parity.test: ${DDTI} is absent; DDTI frames skipped, synthetic frames still run`);

/** A capture "screen": the imaging area at an odd offset (ffmpeg must crop exactly) below a header band. */
interface Screens {
  width: number;
  height: number;
  roi: Rect;
  screens: Uint8Array[];
  /** the imaging area of each screen as a PNG: what the training set holds */
  roiPngs: Buffer[];
}

function makeScreens(rois: GreyFrame[], roiPngs: Buffer[]): Screens {
  const { width: rw, height: rh } = rois[0]!;
  const roi = { x: 7, y: 5, width: rw, height: rh };
  // even screen sizes: 4:2:0 / 4:2:2 encoders need them; the ROI inside stays odd-placed
  const width = (rw + 7 + 4) & ~1;
  const height = (rh + 5 + 4) & ~1;
  const screens = rois.map((r) => {
    const s = new Uint8Array(width * height).fill(20);
    // the "patient name" band above the imaging area
    for (let x = 0; x < width; x++) for (let y = 0; y < roi.y; y++) s[y * width + x] = (x >> 2) % 2 ? 250 : 5;
    for (let y = 0; y < rh; y++) s.set(r.data.subarray(y * rw, (y + 1) * rw), (roi.y + y) * width + roi.x);
    return s;
  });
  return { width, height, roi, screens, roiPngs };
}

/** Deterministic synthetic frames: texture, speckle, a dark nodule, and both ends of the grey scale. */
function syntheticFrames(n: number, w = 203, h = 151): GreyFrame[] {
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  return Array.from({ length: n }, (_, k) => {
    const d = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let v = 120 + 90 * Math.sin((x + 9 * k) / 7) * Math.cos(y / 11) + (rnd() - 0.5) * 50;
        if (((x - 100 - 5 * k) / 40) ** 2 + ((y - 75) / 25) ** 2 < 1) v *= 0.4;
        if (y < 6) v = 255;
        if (x < 6) v = 0;
        d[y * w + x] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
    return { width: w, height: h, data: d };
  });
}

async function png(g: GreyFrame): Promise<Buffer> {
  return sharp(g.data, { raw: { width: g.width, height: g.height, channels: 1 } })
    .png()
    .toBuffer();
}

/** The model input tensors of training data preparation for these images (what the model trains on). */
async function preparedInputs(pngs: Buffer[], spec: Preprocessing): Promise<Float32Array[]> {
  const rows = await prepared(pngs, spec);
  return rows.map((data) => toInputTensorData({ width: spec.width, height: spec.height, data }, spec));
}

/** Training data preparation itself (prepare-dataset) over these images: one model-size row each. */
async function prepared(pngs: Buffer[], spec: Preprocessing): Promise<Uint8Array[]> {
  const dir = await tempDir('te-parity-data-');
  await mkdir(join(dir, 'images'));
  await mkdir(join(dir, 'masks'));
  const ids = pngs.map((_, i) => `f${String(i).padStart(3, '0')}`);
  const mask = await sharp(Buffer.alloc(16 * 16), { raw: { width: 16, height: 16, channels: 1 } })
    .png()
    .toBuffer();
  for (const [i, id] of ids.entries()) {
    await writeFile(join(dir, 'images', `${id}.png`), pngs[i]!);
    await writeFile(join(dir, 'masks', `${id}.png`), mask);
  }
  await writeFile(join(dir, 'split.json'), JSON.stringify({ train: ids, val: [], test: [] }));
  await prepareDataset({ data: dir, spec, out: join(dir, 'out'), quiet: true });
  const all = await readFile(join(dir, 'out', 'images.u8'));
  const n = spec.width * spec.height;
  return ids.map((_, i) => new Uint8Array(all.subarray(i * n, (i + 1) * n)));
}

/** Every frame a source yields until it ends (a generous guard stops a hung source). */
async function drain(src: FrameSource, timeoutMs = 120_000): Promise<Frame[]> {
  const out: Frame[] = [];
  const guard = setTimeout(() => void src.stop(), timeoutMs);
  for await (const f of src.frames()) out.push(f);
  clearTimeout(guard);
  return out;
}

interface Encoding {
  name: string;
  file: string;
  args: string[];
  /** the range ffmpeg reports for the stream; decides how its Y plane maps to grey */
  range: 'pc' | 'tv' | 'unknown';
  /** bytes per frame of the native decode and where Y sits in it */
  native: (w: number, h: number) => { bytes: number; luma: (buf: Uint8Array, i: number) => number };
}

const ENCODINGS: Encoding[] = [
  {
    name: 'ffv1 lossless grey',
    file: 'ffv1.mkv',
    args: ['-c:v', 'ffv1', '-pix_fmt', 'gray'],
    range: 'unknown',
    native: (w, h) => ({ bytes: w * h, luma: (b, i) => b[i] as number }),
  },
  {
    name: 'MJPEG (full-range YUV 4:2:2, as a USB dongle sends)',
    file: 'mjpeg.mkv',
    args: ['-c:v', 'mjpeg', '-q:v', '3', '-pix_fmt', 'yuvj422p'],
    range: 'pc',
    native: (w, h) => ({ bytes: 2 * w * h, luma: (b, i) => b[i] as number }),
  },
  {
    name: 'YUYV 4:2:2, untagged limited range (a raw dongle stream)',
    file: 'yuyv.nut',
    args: ['-c:v', 'rawvideo', '-pix_fmt', 'yuyv422'],
    range: 'unknown',
    native: (w, h) => ({ bytes: 2 * w * h, luma: (b, i) => b[2 * i] as number }),
  },
];

function ffmpeg(args: string[], input?: Buffer): Buffer {
  const base = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y'];
  return execFileSync('ffmpeg', [...base, ...args], { input, maxBuffer: 1 << 30 });
}

function encode(s: Screens, e: Encoding, dir: string): string {
  const path = join(dir, e.file);
  const raw = Buffer.concat(s.screens.map((x) => Buffer.from(x)));
  const input = ['-f', 'rawvideo', '-pix_fmt', 'gray', '-s', `${s.width}x${s.height}`, '-r', '25', '-i', 'pipe:0'];
  ffmpeg([...input, ...e.args, path], raw);
  return path;
}

function probe(path: string): { pix_fmt: string; color_range: string } {
  const args = ['-v', 'error', '-select_streams', 'v:0', '-of', 'json'];
  args.push('-show_entries', 'stream=pix_fmt,color_range', path);
  const r = spawnSync('ffprobe', args, { encoding: 'utf8' });
  const st = (JSON.parse(r.stdout) as { streams: { pix_fmt: string; color_range?: string }[] }).streams[0]!;
  return { pix_fmt: st.pix_fmt, color_range: st.color_range ?? 'unknown' }; // ffprobe omits an unknown range
}

/**
 * The decoded frames' true pixels: the Y plane in the decoder's own format (no conversion), expanded
 * to full range here when the stream is limited range (or untagged YUV, which ffmpeg treats as
 * limited), then cropped to the ROI.
 */
function trueRois(path: string, s: Screens, e: Encoding): GreyFrame[] {
  const pixFmt = probe(path).pix_fmt;
  const limited = e.range === 'tv' || (e.range === 'unknown' && pixFmt !== 'gray');
  const all = ffmpeg(['-i', path, '-f', 'rawvideo', 'pipe:1']);
  const { bytes, luma } = e.native(s.width, s.height);
  expect(all.length).toBe(bytes * s.screens.length);
  return s.screens.map((_, k) => {
    const frame = all.subarray(k * bytes, (k + 1) * bytes);
    const d = new Uint8Array(s.roi.width * s.roi.height);
    for (let y = 0; y < s.roi.height; y++) {
      for (let x = 0; x < s.roi.width; x++) {
        const yv = luma(frame, (s.roi.y + y) * s.width + s.roi.x + x);
        d[y * s.roi.width + x] = limited ? Math.max(0, Math.min(255, Math.round(((yv - 16) * 255) / 219))) : yv;
      }
    }
    return { width: s.roi.width, height: s.roi.height, data: d };
  });
}

function fileSource(path: string, s: Screens): FfmpegSource {
  const output = { roi: s.roi, sourceWidth: s.width, sourceHeight: s.height };
  return createFileSource({ path, realtime: false, loop: false }, output, 'ffmpeg', logger);
}

/** The real model with a tap on its input: what FrameProcessor feeds onnxruntime for a frame. */
class ModelInputs {
  private constructor(
    private readonly proc: FrameProcessor,
    private readonly seen: Float32Array[],
    readonly segmenter: Segmenter,
  ) {}

  static async create(card: ModelCard): Promise<ModelInputs> {
    const seg = await Segmenter.create({
      modelPath: MODEL,
      card,
      executionProviders: ['cpu'],
      intraOpThreads: 1,
      logger,
    });
    const seen: Float32Array[] = [];
    const run = seg.run.bind(seg);
    seg.run = (input) => {
      seen.push(Float32Array.from(input));
      return run(input);
    };
    return new ModelInputs(new FrameProcessor(seg, { minAreaPx: 40, pixelSpacingMm: null }), seen, seg);
  }

  async of(frames: Frame[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (const f of frames) {
      this.seen.length = 0;
      await this.proc.process(f);
      expect(this.seen).toHaveLength(1);
      out.push(this.seen[0]!);
    }
    return out;
  }
}

/** Largest difference between model inputs, in grey levels (the tensor is grey / 255 / std - mean / std). */
function greyLevelDiff(a: Float32Array, b: Float32Array, spec: Preprocessing): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m * 255 * spec.std;
}

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

/** Runs one frame set through every source path and compares each model input with prepare-dataset's. */
type FrameSet = { rois: GreyFrame[]; roiPngs: Buffer[] };

function parityCases(label: string, load: () => Promise<FrameSet>, enabled = true): void {
  const title = `${label}: the model input equals training data preparation on every source path`;
  describe.skipIf(!enabled)(enabled ? title : `${title} (skipped: ${DDTI} is absent)`, () => {
    let card: ModelCard;
    let spec: Preprocessing;
    let model: ModelInputs;
    let s: Screens;
    let dir: string;
    let reference: Float32Array[];

    beforeAll(async () => {
      card = await shippedCard();
      spec = card.preprocessing;
      model = await ModelInputs.create(card);
      const { rois, roiPngs } = await load();
      s = makeScreens(rois, roiPngs);
      dir = await tempDir('te-parity-');
      reference = await preparedInputs(s.roiPngs, spec);
    });
    afterAll(async () => {
      await model?.segmenter.release();
    });

    it('an image file (images source, ROI cropped from the screen)', async () => {
      const imgDir = join(dir, 'images');
      await mkdir(imgDir);
      for (const [i, scr] of s.screens.entries()) {
        const name = `s${String(i).padStart(3, '0')}.png`;
        await writeFile(join(imgDir, name), await png({ width: s.width, height: s.height, data: scr }));
      }
      const frames = await drain(new ImagesSource({ dir: imgDir, fps: 1000, loop: false, roi: s.roi }, spec, logger));
      expect(frames).toHaveLength(s.screens.length);
      const inputs = await model.of(frames);
      for (const [i, x] of inputs.entries()) expect(greyLevelDiff(x, reference[i]!, spec), `frame ${i}`).toBe(0);
    });

    for (const e of ENCODINGS) {
      it(`a video file: ${e.name}`, async () => {
        const path = encode(s, e, dir);
        expect(probe(path).color_range).toBe(e.range);
        const truth = trueRois(path, s, e);
        const lossless = e.file === 'ffv1.mkv';
        if (lossless) for (const [i, t] of truth.entries()) expect(maxDiff(t.data, roiOf(s, i)), `frame ${i}`).toBe(0);
        // the reference: training preparation of what the file really holds
        const ref = lossless ? reference : await preparedInputs(await Promise.all(truth.map(png)), spec);

        // capture alone (ROI-size grey: the resize is the frame processor's) is the true pixels in full range
        const src = fileSource(path, s);
        const frames = await drain(src);
        expect(frames).toHaveLength(truth.length);
        expect(src.status().badFrames).toBe(0);
        for (const [i, t] of truth.entries()) {
          expect([frames[i]!.width, frames[i]!.height]).toEqual([s.roi.width, s.roi.height]);
          expect(maxDiff(frames[i]!.data, t.data), `capture grey, frame ${i}`).toBeLessThanOrEqual(lossless ? 0 : 1);
        }

        const inputs = await model.of(frames);
        const diffs = inputs.map((x, i) => greyLevelDiff(x, ref[i]!, spec));
        const worst = Math.max(...diffs).toFixed(3);
        console.log(`parity, ${label}, ${e.name}: worst model-input difference ${worst} grey levels`);
        for (const [i, d] of diffs.entries()) expect(d, `frame ${i}`).toBeLessThanOrEqual(lossless ? 0 : 1.0001);
      });
    }

    it("the card's kernel is used: cubic, lanczos3 cards; ffv1 frames vs prepare-dataset with that card", async () => {
      const path = encode(s, ENCODINGS[0]!, dir);
      for (const resizeKernel of ['cubic', 'lanczos3'] as const) {
        const k = { ...spec, resizeKernel };
        const m = await ModelInputs.create({ ...card, preprocessing: k });
        try {
          const inputs = await m.of(await drain(fileSource(path, s)));
          const ref = await preparedInputs(s.roiPngs, k);
          expect(inputs).toHaveLength(ref.length);
          for (const [i, x] of inputs.entries()) {
            expect(greyLevelDiff(x, ref[i]!, k), `${resizeKernel} frame ${i}`).toBe(0);
          }
          // and the kernel matters: the linear reference differs
          expect(Math.max(...inputs.map((x, i) => greyLevelDiff(x, reference[i]!, k)))).toBeGreaterThan(1);
        } finally {
          await m.segmenter.release();
        }
      }
    });
  });
}

function roiOf(s: Screens, i: number): Uint8Array {
  const scr = s.screens[i]!;
  const d = new Uint8Array(s.roi.width * s.roi.height);
  for (let y = 0; y < s.roi.height; y++) {
    const from = (s.roi.y + y) * s.width + s.roi.x;
    d.set(scr.subarray(from, from + s.roi.width), y * s.roi.width);
  }
  return d;
}

parityCases('synthetic frames', async () => {
  const rois = syntheticFrames(4);
  return { rois, roiPngs: await Promise.all(rois.map(png)) };
});

parityCases(
  'DDTI frames (../shared)',
  async () => {
    // 12 grey frames of the train split as they are on disk: the training set reads these very files
    const split = JSON.parse(await readFile(join(DDTI, 'split.json'), 'utf8')) as { train: string[] };
    const rois: GreyFrame[] = [];
    const roiPngs: Buffer[] = [];
    for (const id of split.train) {
      const bytes = await readFile(join(DDTI, 'images', `${id}.png`));
      const meta = await sharp(bytes).metadata();
      if (meta.channels !== 1 || meta.width !== 560 || meta.height !== 360) continue;
      // .greyscale(): sharp hands a grey PNG back as 3-channel sRGB otherwise
      const { data, info } = await sharp(bytes).greyscale().raw().toBuffer({ resolveWithObject: true });
      expect(info.channels).toBe(1);
      rois.push({ width: info.width, height: info.height, data: new Uint8Array(data) });
      roiPngs.push(bytes);
      if (rois.length === 12) break;
    }
    expect(rois).toHaveLength(12);
    return { rois, roiPngs };
  },
  HAVE_DDTI,
);

describe('the phantom source: model input equals training data preparation of its screen', () => {
  it('4 phantom frames, ROI cropped from the rendered screen', async () => {
    const card = await shippedCard();
    const spec = card.preprocessing;
    const model = await ModelInputs.create(card);
    try {
      const o = { ...DEFAULT_PHANTOM, nodules: 2, fps: 0, maxFrames: 4 };
      const src = new PhantomSource(o, spec);
      const frames = await drain(src);
      expect(frames).toHaveLength(4);
      const screens = frames.map((_, i) => src.renderScreen(i));
      const s: Screens = { width: o.screenWidth, height: o.screenHeight, roi: o.roi, screens, roiPngs: [] };
      const pngs = await Promise.all(screens.map((_, i) => png({ ...o.roi, data: roiOf(s, i) })));
      const ref = await preparedInputs(pngs, spec);
      const inputs = await model.of(frames);
      for (const [i, x] of inputs.entries()) expect(greyLevelDiff(x, ref[i]!, spec), `frame ${i}`).toBe(0);
    } finally {
      await model.segmenter.release();
    }
  });
});
