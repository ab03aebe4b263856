/**
 * Measures the thyroid lobe's contrast with its surroundings (lobe-contrast.ts) on TG3K's gland masks and
 * writes src/capture/lobe-stats.json, which the phantom's lobe is checked against (tests/phantom.test.ts).
 * With --phantom it prints the phantom's figure per seed next to the measured spread.
 *
 *   node dist/src/tools/measure-lobe-contrast.js --data ../shared/datasets/tg3k --out src/capture/lobe-stats.json
 *   node dist/src/tools/measure-lobe-contrast.js --phantom --seeds 1-12 --against src/capture/lobe-stats.json
 *
 * TG3K frames of the uploader's val folder only: they carry no baked-in augmentation (brightness changes would
 * move the figure), and the test folder is left alone. Only numbers leave the dataset.
 */
import { Command } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeMask } from '../inference/preprocess.js';
import { parseIntList } from '../util/int-list.js';
import { parseIndexCsv, requireColumns } from './index-csv.js';
import { lobeContrast, phantomLobeContrast, VIEW } from './lobe-contrast.js';
import { quantile, type Spread } from './ultrasound-stats.js';

export interface LobeStats {
  about: string;
  command: string;
  source: string;
  frames: number;
  /** lobe core mean / surrounding ring mean, over frames */
  lobeContrast: Spread;
}

async function grey(path: string): Promise<Buffer> {
  return sharp(path).greyscale().resize(VIEW, VIEW).extractChannel(0).raw().toBuffer();
}

export async function measureTg3k(data: string): Promise<Omit<LobeStats, 'command'>> {
  const text = await readFile(join(data, 'index.csv'), 'utf8');
  requireColumns(text, ['id', 'src_split', 'excluded']);
  const ids = parseIndexCsv(text)
    .filter((r) => r.src_split === 'val' && !r.excluded)
    .map((r) => r.id as string);
  const values: number[] = [];
  for (const id of ids) {
    const image = await grey(join(data, 'images', `${id}.png`));
    const c = lobeContrast(image, await decodeMask(join(data, 'masks', `${id}.png`), VIEW, VIEW), VIEW, VIEW);
    if (c !== null) values.push(c);
  }
  const at = (q: number) => Number(quantile(values, q).toFixed(4));
  return {
    about:
      "The thyroid lobe's contrast with its surroundings on real scans (src/tools/lobe-contrast.ts): the mean grey " +
      'of the lobe core over a ring 4-20 px outside it, at 256 x 256. The phantom draws its lobe to read back near ' +
      'the median (src/capture/phantom-anatomy.ts, LEVEL.gland). Spread over frames: p10/p50/p90.',
    source: `${data} (TG3K gland masks, the uploader's val folder)`,
    frames: values.length,
    lobeContrast: { p10: at(0.1), p50: at(0.5), p90: at(0.9) },
  };
}

async function main(): Promise<void> {
  const o = new Command('measure-lobe-contrast')
    .option('--data <dir>', 'TG3K folder (images/, masks/, index.csv)', '../shared/datasets/tg3k')
    .option('--out <file>', 'write the measured JSON here')
    .option('--phantom', 'measure the phantom instead, one frame per seed')
    .option('--seeds <list>', 'with --phantom: which seeds, e.g. 1-12', '1-12')
    .option('--against <file>', 'with --phantom: the measured JSON to print beside it', 'src/capture/lobe-stats.json')
    .parse()
    .opts<{ data: string; out?: string; phantom?: boolean; seeds: string; against: string }>();
  if (o.phantom) {
    const seeds = parseIntList(o.seeds, '--seeds');
    const ph = await phantomLobeContrast(seeds);
    const ref = (JSON.parse(await readFile(o.against, 'utf8')) as LobeStats).lobeContrast;
    console.log(`phantom lobe contrast per seed (${seeds.join(',')}): ${ph.map((v) => v.toFixed(3)).join(' ')}`);
    console.log(
      `phantom median ${quantile(ph, 0.5).toFixed(3)} [p10 ${quantile(ph, 0.1).toFixed(2)} .. p90 ` +
        `${quantile(ph, 0.9).toFixed(2)}]; TG3K median ${ref.p50.toFixed(3)} ` +
        `[${ref.p10.toFixed(2)} .. ${ref.p90.toFixed(2)}]`,
    );
    return;
  }
  const measured = await measureTg3k(o.data);
  const command = `node dist/src/tools/measure-lobe-contrast.js --data ${o.data}${o.out ? ` --out ${o.out}` : ''}`;
  const { about, ...rest } = measured;
  const json = JSON.stringify({ about, command, ...rest }, null, 1);
  if (o.out) await writeFile(o.out, `${json}\n`);
  else console.log(json);
  console.error(`measured ${measured.frames} TG3K frames: lobe contrast p50 ${measured.lobeContrast.p50}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(`measure-lobe-contrast: ${(err as Error).message}`);
    process.exit(1);
  });
}
