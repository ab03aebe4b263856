/**
 * Prepares a segmentation dataset for training through the daemon's own preprocessing
 * (src/inference/preprocess.ts), so train-time and serve-time pixels are the same bytes.
 *
 * Input: a folder with images/<id>.png, masks/<id>.png and split.json ({train,val,test: id[]}).
 * Output folder: images.u8 and masks.u8 (N x H x W uint8, masks 0/1) and meta.json
 * (ids, split of each row, preprocessing spec, source hash).
 *
 *   node dist/src/tools/prepare-dataset.js --data ../shared/datasets/ddti --spec training/preprocessing-256.json --out data/ddti-256
 */
import { Command } from 'commander';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { PreprocessingSchema, type Preprocessing } from '../inference/model-card.js';
import { decodeMask, preprocessImage } from '../inference/preprocess.js';
import { compileSchema, formatErrors } from '../util/schema.js';
import { ProgressBar } from '../util/progress.js';

const SPLITS = ['train', 'val', 'test'] as const;

export interface PrepareOptions {
  data: string;
  spec: Preprocessing;
  out: string;
  limit?: number;
  splits?: readonly string[];
  quiet?: boolean;
}

export async function prepareDataset(opts: PrepareOptions): Promise<{ rows: number; hash: string }> {
  const split = JSON.parse(await readFile(join(opts.data, 'split.json'), 'utf8')) as Record<string, unknown>;
  const rows: { id: string; split: string }[] = [];
  for (const s of opts.splits ?? SPLITS) {
    const ids = split[s];
    if (!Array.isArray(ids)) throw new Error(`${opts.data}/split.json has no list "${s}"`);
    const chosen = opts.limit ? ids.slice(0, opts.limit) : ids;
    for (const id of chosen) rows.push({ id: String(id), split: s });
  }
  const { width, height } = opts.spec;
  const frame = width * height;
  const images = new Uint8Array(rows.length * frame);
  const masks = new Uint8Array(rows.length * frame);
  const sourceHash = createHash('sha256');
  const bar = new ProgressBar('prepare', rows.length, opts.quiet);
  for (const [i, row] of rows.entries()) {
    const imgBytes = await readFile(join(opts.data, 'images', `${row.id}.png`));
    const maskBytes = await readFile(join(opts.data, 'masks', `${row.id}.png`));
    sourceHash.update(row.id).update(imgBytes).update(maskBytes);
    const grey = await preprocessImage(imgBytes, opts.spec);
    images.set(grey.data, i * frame);
    masks.set(await decodeMask(maskBytes, width, height), i * frame);
    bar.tick(row.id);
  }
  bar.done();
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
    sharp: sharp.versions.sharp,
    vips: sharp.versions.vips,
    rows,
  };
  await writeFile(join(opts.out, 'meta.json'), JSON.stringify(meta, null, 1));
  return { rows: rows.length, hash };
}

async function main(): Promise<void> {
  const program = new Command()
    .requiredOption('--data <dir>', 'dataset folder (images/, masks/, split.json)')
    .requiredOption('--spec <file>', 'preprocessing spec JSON (becomes the model card preprocessing)')
    .requiredOption('--out <dir>', 'output folder')
    .option('--limit <n>', 'at most n frames per split (small runs)', (v) => Number.parseInt(v, 10))
    .option('--splits <list>', 'comma-separated splits', 'train,val,test')
    .parse();
  const o = program.opts<{ data: string; spec: string; out: string; limit?: number; splits: string }>();
  const spec = JSON.parse(await readFile(o.spec, 'utf8')) as unknown;
  const validate = compileSchema(PreprocessingSchema);
  if (!validate(spec)) throw new Error(`${o.spec}: ${formatErrors(validate.errors)}`);
  const r = await prepareDataset({ data: o.data, spec, out: o.out, limit: o.limit, splits: o.splits.split(',') });
  console.log(`prepared ${r.rows} frames into ${o.out} (source sha256 ${r.hash.slice(0, 12)})`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error((err as Error).message);
    process.exit(1);
  });
}
