/**
 * Prepares a segmentation dataset for training through the daemon's own preprocessing
 * (src/inference/preprocess.ts), so train-time and serve-time pixels are the same bytes.
 *
 * Input: a folder with images/<id>.png, masks/<id>.png and split.json ({train,val,test: id[]}; --split-file
 * names another, e.g. the one src/tools/tg3k-split.ts writes for TG3K, which has none).
 * Output folder: images.u8 and masks.u8 (N x H x W uint8, masks 0/1) and meta.json
 * (ids, split of each row, preprocessing spec, source hash).
 *
 * With --negatives, frames without a nodule follow the dataset's own rows (src/tools/negatives.ts):
 * tissue crops clear of the nodule and probe-lifted screens, each in the split of the frame it was
 * made from (val/test negatives are for choosing and reporting only), and, for train, crops around
 * the nodule. Each such row names its `kind`, `source` frame and crop `rect`.
 *
 *   node dist/src/tools/prepare-dataset.js --data ../shared/datasets/ddti \
 *     --spec training/preprocessing-256.json --out data/ddti-256
 */
import { Command } from 'commander';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { PreprocessingSchema, type Preprocessing } from '../inference/model-card.js';
import { decodeMask, decodeToModelGrey, enhance, preprocessImage } from '../inference/preprocess.js';
import { compileSchema, formatErrors } from '../util/schema.js';
import { ProgressBar } from '../util/progress.js';
import { mulberry32 } from '../capture/phantom.js';
import type { Rect } from '../capture/frame-source.js';
import {
  imagingArea,
  maskInRect,
  noduleCrop,
  probeLifted,
  respeckled,
  tissueCrop,
  viewCrop,
  type FrameKind,
} from './negatives.js';

const SPLITS = ['train', 'val', 'test'] as const;

export interface PrepareOptions {
  data: string;
  spec: Preprocessing;
  out: string;
  limit?: number;
  splits?: readonly string[];
  /** the split file (default <data>/split.json): a dataset without one (TG3K) gets one made by a tool */
  splitFile?: string;
  quiet?: boolean;
  /** frames without a nodule per source frame (0 = none), and the seed that places them */
  negatives?: {
    tissue: number;
    notissue: number;
    noduleCrops: number;
    seed: number;
    roi?: number;
    speckle?: number;
    /** zoomed-in views that may cut the nodule (train only; their own random stream, so the other kinds stay) */
    viewCrops?: number;
  };
}

interface Row {
  id: string;
  split: string;
  kind?: FrameKind;
  source?: string;
  rect?: Rect;
  /** made from the source frame re-speckled before preprocessing (train only; see respeckled) */
  respeckled?: number;
}

interface Extra {
  row: Row;
  image: Buffer;
  roi?: Rect;
  mask: Uint8Array | null; // at the model size; null = empty
}

/** A 0/1 source mask cropped to `rect`, at the model size (nearest neighbour, as decodeMask). */
async function cropMask(mask: Uint8Array, width: number, rect: Rect, spec: Preprocessing): Promise<Uint8Array> {
  const cropped = new Uint8Array(rect.width * rect.height);
  for (let y = 0; y < rect.height; y++) {
    for (let x = 0; x < rect.width; x++)
      cropped[y * rect.width + x] = mask[(rect.y + y) * width + rect.x + x] ? 255 : 0;
  }
  return decodeMask(cropped, spec.width, spec.height, { width: rect.width, height: rect.height });
}

/** Negatives (and train nodule crops) made from one source frame, not yet preprocessed. */
async function extrasFor(
  row: Row,
  imgBytes: Buffer,
  maskBytes: Buffer,
  spec: Preprocessing,
  neg: NonNullable<PrepareOptions['negatives']>,
  index: number,
): Promise<Extra[]> {
  const { data: greyBuf, info } = await sharp(imgBytes)
    .removeAlpha()
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const grey = new Uint8Array(greyBuf.buffer, greyBuf.byteOffset, info.width * info.height * info.channels).filter(
    (_, i) => i % info.channels === 0,
  );
  const { width, height } = info;
  const mask = await decodeMask(maskBytes, width, height);
  const rnd = mulberry32((neg.seed * 7919 + index * 104729) >>> 0);
  const out: Extra[] = [];
  const aspect = spec.width / spec.height;
  /** a view of the source screen holding (part of) its nodule: the mask cropped with it */
  const withNodule = async (id: string, kind: FrameKind, rect: Rect): Promise<Extra> => ({
    row: { id: `${row.id}#${id}`, split: row.split, kind, source: row.id, rect },
    image: imgBytes,
    roi: rect,
    mask: await cropMask(mask, width, rect, spec),
  });
  if (neg.roi) {
    // the daemon's view: the screen cropped to its imaging area (a calibrated ROI), the nodule in it
    const rect = imagingArea(grey, width, height);
    const inside = maskInRect(mask, width, rect);
    const total = mask.reduce((s, v) => s + v, 0);
    // split-screen frames whose nodule sits in the other view are left out rather than mislabelled
    if ((rect.width < width || rect.height < height) && total > 0 && inside >= 0.98 * total)
      out.push(await withNodule('roi', 'roi', rect));
  }
  for (let k = 0; k < neg.tissue; k++) {
    const rect = tissueCrop(grey, mask, width, height, aspect, rnd);
    if (rect)
      out.push({
        row: { id: `${row.id}#tissue${k}`, split: row.split, kind: 'tissue', source: row.id, rect },
        image: imgBytes,
        roi: rect,
        mask: null,
      });
  }
  for (let k = 0; k < neg.notissue; k++) {
    const lifted = probeLifted(grey, width, height, Math.floor(rnd() * 2 ** 31));
    const png = await sharp(lifted, { raw: { width, height, channels: 1 } })
      .png()
      .toBuffer();
    // half as the whole screen (like the dataset's frames), half as the imaging area alone (like a calibrated box)
    const rect = k % 2 === 1 || rnd() < 0.5 ? imagingArea(grey, width, height) : undefined;
    out.push({
      row: { id: `${row.id}#notissue${k}`, split: row.split, kind: 'notissue', source: row.id, rect },
      image: png,
      roi: rect,
      mask: null,
    });
  }
  if (row.split === 'train') {
    const viewRnd = mulberry32((neg.seed * 6151 + index * 15485863 + 1) >>> 0);
    for (let k = 0; k < (neg.viewCrops ?? 0); k++) {
      const rect = viewCrop(mask, grey, width, height, viewRnd);
      if (rect) out.push(await withNodule(`viewcrop${k}`, 'viewcrop', rect));
    }
    // the calibrated view, the tissue crops and the view crops again, from the screen re-speckled (another
    // scanner setting)
    const views = out.filter((e) => e.row.kind === 'roi' || e.row.kind === 'tissue' || e.row.kind === 'viewcrop');
    for (let k = 1; k <= (neg.speckle ?? 0); k++) {
      const png = await sharp(respeckled(grey, width, height, Math.floor(rnd() * 2 ** 31)), {
        raw: { width, height, channels: 1 },
      })
        .png()
        .toBuffer();
      for (const e of views)
        out.push({ ...e, row: { ...e.row, id: `${e.row.id}~speckle${k}`, respeckled: k }, image: png });
    }
    for (let k = 0; k < neg.noduleCrops; k++) {
      const rect = noduleCrop(mask, grey, width, height, rnd);
      if (rect) out.push(await withNodule(`nodulecrop${k}`, 'nodulecrop', rect));
    }
  }
  return out;
}

export async function prepareDataset(opts: PrepareOptions): Promise<{ rows: number; hash: string }> {
  const splitFile = opts.splitFile ?? join(opts.data, 'split.json');
  const split = JSON.parse(await readFile(splitFile, 'utf8')) as Record<string, unknown>;
  const rows: Row[] = [];
  for (const s of opts.splits ?? SPLITS) {
    const ids = split[s];
    if (!Array.isArray(ids)) throw new Error(`${splitFile} has no list "${s}"`);
    const chosen = opts.limit ? ids.slice(0, opts.limit) : ids;
    for (const id of chosen) rows.push({ id: String(id), split: s });
  }
  const { width, height } = opts.spec;
  const frame = width * height;
  const imageChunks: Uint8Array[] = [];
  const maskChunks: Uint8Array[] = [];
  const extras: Extra[] = [];
  const sourceHash = createHash('sha256');
  const bar = new ProgressBar('prepare', rows.length, opts.quiet);
  for (const [i, row] of [...rows].entries()) {
    const imgBytes = await readFile(join(opts.data, 'images', `${row.id}.png`));
    const maskBytes = await readFile(join(opts.data, 'masks', `${row.id}.png`));
    sourceHash.update(row.id).update(imgBytes).update(maskBytes);
    const grey = await preprocessImage(imgBytes, opts.spec);
    imageChunks.push(grey.data);
    maskChunks.push(await decodeMask(maskBytes, width, height));
    if (opts.negatives) extras.push(...(await extrasFor(row, imgBytes, maskBytes, opts.spec, opts.negatives, i)));
    bar.tick(row.id);
  }
  bar.done();
  // Made frames follow the dataset's rows, through the same preprocessing (ROI crop as the daemon does it).
  for (const e of extras) {
    imageChunks.push((await enhance(await decodeToModelGrey(e.image, opts.spec, e.roi), opts.spec)).data);
    maskChunks.push(e.mask ?? new Uint8Array(frame));
    rows.push(e.row);
  }
  const images = new Uint8Array(rows.length * frame);
  const masks = new Uint8Array(rows.length * frame);
  for (const [i, c] of imageChunks.entries()) images.set(c, i * frame);
  for (const [i, c] of maskChunks.entries()) masks.set(c, i * frame);
  await mkdir(opts.out, { recursive: true });
  await writeFile(join(opts.out, 'images.u8'), images);
  await writeFile(join(opts.out, 'masks.u8'), masks);
  const hash = sourceHash.digest('hex');
  const meta = {
    source: opts.data,
    sourceSha256: hash,
    splitSha256: createHash('sha256').update(JSON.stringify(split)).digest('hex'),
    width,
    height,
    preprocessing: opts.spec,
    preparedBy: 'src/tools/prepare-dataset.ts (daemon preprocessing: src/inference/preprocess.ts)',
    negatives: opts.negatives ?? null,
    sharp: sharp.versions.sharp,
    vips: sharp.versions.vips,
    rows,
  };
  await writeFile(join(opts.out, 'meta.json'), JSON.stringify(meta, null, 1));
  return { rows: rows.length, hash };
}

function parseNegatives(text: string): NonNullable<PrepareOptions['negatives']> {
  const n = { tissue: 1, notissue: 1, noduleCrops: 1, seed: 0, roi: 0, speckle: 0, viewCrops: 0 };
  const keys: Record<string, keyof typeof n> = {
    tissue: 'tissue',
    notissue: 'notissue',
    nodulecrops: 'noduleCrops',
    seed: 'seed',
    roi: 'roi',
    speckle: 'speckle',
    viewcrops: 'viewCrops',
  };
  for (const part of text.split(',').filter(Boolean)) {
    const [k = '', v = ''] = part.split('=');
    const key = keys[k.trim()];
    const value = Number.parseInt(v, 10);
    if (!key || !Number.isInteger(value) || value < 0)
      throw new Error(
        `--negatives: "${part}" is not one of tissue|notissue|nodulecrops|roi|speckle|viewcrops|seed=<integer >= 0>`,
      );
    n[key] = value;
  }
  return n;
}

async function main(): Promise<void> {
  const program = new Command()
    .requiredOption('--data <dir>', 'dataset folder (images/, masks/, split.json)')
    .requiredOption('--spec <file>', 'preprocessing spec JSON (becomes the model card preprocessing)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--limit <n>', 'at most n frames per split (small runs)', (v) => Number.parseInt(v, 10))
    .option('--splits <list>', 'comma-separated splits', 'train,val,test')
    .option('--split-file <file>', 'split JSON {train,val,test: id[]} (default: <data>/split.json)')
    .option(
      '--negatives <spec>',
      'made frames per source frame, e.g. tissue=3,notissue=1,nodulecrops=1,roi=1,speckle=1,seed=0 (roi: the ' +
        'frame cropped to its imaging area, as a calibrated box sees it; speckle: train copies of the roi, ' +
        'tissue and view-crop frames, re-speckled before preprocessing; viewcrops: train views zoomed in at the ' +
        "nodule's depth, anywhere across, that may cut the nodule)",
    )
    .parse();
  const o = program.opts<{
    data: string;
    spec: string;
    out: string;
    limit?: number;
    splits: string;
    splitFile?: string;
    negatives?: string;
  }>();
  const spec = JSON.parse(await readFile(o.spec, 'utf8')) as unknown;
  const validate = compileSchema(PreprocessingSchema);
  if (!validate(spec)) throw new Error(`${o.spec}: ${formatErrors(validate.errors)}`);
  const r = await prepareDataset({
    data: o.data,
    spec,
    out: o.out,
    limit: o.limit,
    splits: o.splits.split(','),
    splitFile: o.splitFile,
    negatives: o.negatives ? parseNegatives(o.negatives) : undefined,
  });
  console.log(`prepared ${r.rows} frames into ${o.out} (source sha256 ${r.hash.slice(0, 12)})`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error((err as Error).message);
    process.exit(1);
  });
}
