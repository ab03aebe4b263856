/**
 * A split file for TG3K (../shared/datasets/tg3k), which ships none: its frames come from 16 scan
 * videos, and neighbouring frames are near copies, so a random split would put the same view in
 * train and val. Frames are grouped by the video block SOURCE.md estimates (`seg_est`); whole
 * blocks go to val, frames near a block boundary (`seg_edge`, the block is uncertain there) and
 * excluded frames are left out. TG3K masks the whole gland, so it is for pretraining only: `test`
 * stays empty and no figure is ever reported on it.
 *
 *   node dist/src/tools/tg3k-split.js --data ../shared/datasets/tg3k --out data/tg3k-split.json
 *   node dist/src/tools/prepare-dataset.js --data ../shared/datasets/tg3k --split-file data/tg3k-split.json \
 *     --splits train,val --spec training/preprocessing-128-tiles.json --out data/tg3k-128
 */
import { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseIndexCsv, requireColumns } from './index-csv.js';

export interface Tg3kSplit {
  about: string;
  valBlocks: number[];
  train: string[];
  val: string[];
  test: string[];
}

/** The blocks held out for val by default: two videos of average length, away from each other. */
export const DEFAULT_VAL_BLOCKS = [3, 11];

/** The split from index.csv's text (columns id, seg_est, seg_edge, excluded). */
export function tg3kSplit(indexCsv: string, valBlocks: readonly number[] = DEFAULT_VAL_BLOCKS): Tg3kSplit {
  requireColumns(indexCsv, ['id', 'seg_est', 'seg_edge', 'excluded']);
  const out: Tg3kSplit = {
    about:
      'TG3K split by estimated video block (seg_est); frames near block boundaries and excluded frames left out; ' +
      'for pretraining only (whole-gland masks), so test is empty. Made by src/tools/tg3k-split.ts.',
    valBlocks: [...valBlocks],
    train: [],
    val: [],
    test: [],
  };
  for (const r of parseIndexCsv(indexCsv)) {
    const id = r.id ?? '';
    const block = Number.parseInt(r.seg_est ?? '', 10);
    if (!id || r.excluded?.trim() || r.seg_edge === '1' || !Number.isInteger(block)) continue;
    (valBlocks.includes(block) ? out.val : out.train).push(id);
  }
  return out;
}

async function main(): Promise<void> {
  const o = new Command()
    .requiredOption('--data <dir>', 'the TG3K folder (index.csv, images/, masks/)')
    .requiredOption('--out <file>', 'split JSON to write (for prepare-dataset --split-file)')
    .option('--val-blocks <list>', 'seg_est blocks held out for val', DEFAULT_VAL_BLOCKS.join(','))
    .parse()
    .opts<{ data: string; out: string; valBlocks: string }>();
  const blocks = o.valBlocks.split(',').map((v) => Number.parseInt(v, 10));
  if (blocks.some((b) => !Number.isInteger(b) || b < 0))
    throw new Error(`--val-blocks: "${o.valBlocks}" is not a list of block numbers`);
  const split = tg3kSplit(await readFile(join(o.data, 'index.csv'), 'utf8'), blocks);
  await writeFile(o.out, `${JSON.stringify(split, null, 1)}\n`);
  console.log(`${o.out}: train ${split.train.length}, val ${split.val.length} (blocks ${blocks.join(',')})`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error((err as Error).message);
    process.exit(1);
  });
}
