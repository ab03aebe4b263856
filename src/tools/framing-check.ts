/**
 * Does the model depend on how a frame is framed? Scores the model (through the daemon's own
 * preprocessing and post-processing) on the same content framed two ways:
 *  - DDTI frames (train or val split): the whole scanner screen, as in training, versus the imaging
 *    area alone (found by calibrate's findImagingArea), which is what the daemon feeds the model when
 *    capture.roi is the imaging area;
 *  - phantom frames: the ROI (imaging area) as the daemon crops it, versus its centre (at most 387x300 px) set
 *    into a black 560x360 screen at (86, 8), the median DDTI layout.
 * A model that scores well only in the screen framing has learnt the screen, not the anatomy.
 *
 *   node dist/src/tools/framing-check.js --data ../shared/datasets/ddti --split val --phantom-frames 10
 */
import { Command, Option } from 'commander';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { findImagingArea } from '../capture/calibrate.js';
import { frameFromImage } from '../capture/images-source.js';
import { PhantomSource } from '../capture/phantom-source.js';
import { DEFAULT_PHANTOM, PhantomGenerator } from '../capture/phantom.js';
import { FrameProcessor } from '../inference/frame-processor.js';
import { loadModelCard, type Preprocessing } from '../inference/model-card.js';
import { decodeMask } from '../inference/preprocess.js';
import { iou } from '../inference/scoring.js';
import { Segmenter } from '../inference/segmenter.js';
import { createLogger } from '../util/logger.js';

/** The median DDTI screen layout: a 560x360 screen with the imaging area at (86, 8), 387x300. */
const SCREEN = { width: 560, height: 360, area: { x: 86, y: 8, width: 387, height: 300 } };

function mean(v: number[]): number {
  return v.length ? Math.round((v.reduce((a, b) => a + b, 0) / v.length) * 1000) / 1000 : Number.NaN;
}

export interface PhantomFramingScore {
  seed: number;
  frames: number;
  /** mean IoU with the ROI (imaging area) cropped as the daemon does */
  roi: number;
  /** mean IoU with the ROI's centre set into a DDTI-like screen */
  screen: number;
}

/** Scores the phantom (one nodule, always in view; frames 0, 4, 8, ...) both ways for each seed. */
export async function phantomFramings(
  proc: FrameProcessor,
  spec: Preprocessing,
  seeds: number[],
  frames: number,
): Promise<PhantomFramingScore[]> {
  const out: PhantomFramingScore[] = [];
  const toScreen = (part: Buffer): Promise<Buffer> =>
    sharp({ create: { width: SCREEN.width, height: SCREEN.height, channels: 3, background: '#000' } })
      .composite([{ input: part, left: SCREEN.area.x, top: SCREEN.area.y }])
      .png()
      .toBuffer();
  for (const seed of seeds) {
    const opts = { ...DEFAULT_PHANTOM, seed, nodules: 1, cycleFrames: 0 };
    const src = new PhantomSource({ ...opts, fps: 0, maxFrames: 0 }, spec);
    const g = new PhantomGenerator(opts);
    const roi: number[] = [];
    const framed: number[] = [];
    for (let i = 0; i < frames; i++) {
      const f = await src.renderFrame(i * 4);
      roi.push(iou((await proc.process(f)).mask, f.truth as Uint8Array));
      const p = g.render(i * 4);
      const { roi: R, screenWidth: SW, screenHeight: SH } = opts;
      // the ROI's centre, at most the DDTI area's size (the default ROI is DDTI's median area already)
      const cw = Math.min(R.width, SCREEN.area.width);
      const ch = Math.min(R.height, SCREEN.area.height);
      const c = { left: Math.floor((R.width - cw) / 2), top: Math.floor((R.height - ch) / 2), width: cw, height: ch };
      const grey = sharp(Buffer.from(p.screen), { raw: { width: SW, height: SH, channels: 1 } }).extract({
        left: R.x + c.left,
        top: R.y + c.top,
        width: c.width,
        height: c.height,
      });
      const mask = sharp(Buffer.from(p.mask.map((v) => v * 255)), {
        raw: { width: R.width, height: R.height, channels: 1 },
      }).extract(c);
      const r = await proc.process(await frameFromImage(await toScreen(await grey.png().toBuffer()), spec, 1));
      framed.push(iou(r.mask, await decodeMask(await toScreen(await mask.png().toBuffer()), spec.width, spec.height)));
    }
    out.push({ seed, frames, roi: mean(roi), screen: mean(framed) });
  }
  return out;
}

async function main(): Promise<void> {
  const o = new Command('framing-check')
    .option('--data <dir>', 'DDTI folder', '../shared/datasets/ddti')
    .addOption(new Option('--split <name>', 'DDTI split').choices(['train', 'val']).default('val'))
    .option('--limit <n>', 'first n DDTI frames (0 = all)', (v) => Number.parseInt(v, 10), 0)
    .option('--phantom-frames <n>', 'phantom frames per seed (seeds 1-3)', (v) => Number.parseInt(v, 10), 10)
    .option('--model <file>', 'ONNX model (its card beside it)', 'models/thyroid-nodule-int8.onnx')
    .parse()
    .opts<{ data: string; split: string; limit: number; phantomFrames: number; model: string }>();
  const card = await loadModelCard(o.model.replace(/\.onnx$/, '.json'));
  const seg = await Segmenter.create({
    modelPath: o.model,
    card,
    executionProviders: ['cpu'],
    intraOpThreads: 1,
    logger: createLogger('warn', true),
  });
  // the daemon's rule: the card's minAreaPx (null), as `run`, `infer` and bench:phantom use
  const proc = new FrameProcessor(seg, { minAreaPx: null, pixelSpacingMm: null });
  const { width: W, height: H } = card.preprocessing;
  const score = async (png: Buffer, maskPng: Buffer): Promise<number> => {
    const r = await proc.process(await frameFromImage(png, card.preprocessing, 1));
    return iou(r.mask, await decodeMask(maskPng, W, H));
  };
  const split = JSON.parse(await readFile(join(o.data, 'split.json'), 'utf8')) as Record<string, string[]>;
  const ids = (split[o.split] ?? []).slice(0, o.limit > 0 ? o.limit : undefined);
  const full: number[] = [];
  const area: number[] = [];
  for (const id of ids) {
    const img = await readFile(join(o.data, 'images', `${id}.png`));
    const msk = await readFile(join(o.data, 'masks', `${id}.png`));
    const { data, info } = await sharp(img).greyscale().raw().toBuffer({ resolveWithObject: true });
    const r = findImagingArea(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width, info.height);
    const box = { left: r.x, top: r.y, width: r.width, height: r.height };
    full.push(await score(img, msk));
    area.push(
      await score(await sharp(img).extract(box).png().toBuffer(), await sharp(msk).extract(box).png().toBuffer()),
    );
  }
  console.log(
    `DDTI ${o.split} (${ids.length} frames), mean IoU: whole screen ${mean(full)}, imaging area only ${mean(area)}`,
  );

  for (const r of await phantomFramings(proc, card.preprocessing, [1, 2, 3], o.phantomFrames)) {
    console.log(
      `phantom seed ${r.seed} (${r.frames} frames), mean IoU: ROI as the daemon crops it ${r.roi}, in a ` +
        `DDTI-like screen ${r.screen}`,
    );
  }
  await seg.release();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(`framing-check: ${(err as Error).message}`);
    process.exit(1);
  });
}
