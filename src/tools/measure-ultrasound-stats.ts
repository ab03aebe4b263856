/**
 * Measures B-mode image statistics (gain, speckle, nodule contrast, halo, depth profile, nodule
 * geometry; see ultrasound-stats.ts) on DDTI `train` frames and writes them as the JSON the phantom
 * reads (src/capture/phantom-stats.json). With --phantom N it measures N phantom frames the same way
 * (seeds 1-3, or --seeds) and prints them next to a stats file, so the phantom can be checked against the real frames.
 *
 *   node dist/src/tools/measure-ultrasound-stats.js --data ../shared/datasets/ddti --out src/capture/phantom-stats.json
 *   node dist/src/tools/measure-ultrasound-stats.js --phantom 30 --against src/capture/phantom-stats.json
 *
 * Only the numbers leave the dataset; no pixels are written. `test` is refused: the phantom is not
 * tuned on it.
 */
import { Command, Option } from 'commander';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { findImagingArea } from '../capture/calibrate.js';
import { DEFAULT_PHANTOM, PhantomGenerator } from '../capture/phantom.js';
import { parseIntList } from '../util/int-list.js';
import { ProgressBar } from '../util/progress.js';
import { parseIndexCsv } from './index-csv.js';
import { frameStats, summarise, type FrameStats, type Spread, type StatsSummary } from './ultrasound-stats.js';

export interface MeasuredStats {
  about: string;
  command: string;
  source: string;
  split: string;
  frames: number;
  /** frames whose geometry counted (one annotated region: split-screen frames carry two views) */
  geometryFrames: number;
  stats: StatsSummary;
}

async function greyRaw(path: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(path).removeAlpha().greyscale().raw().toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = data[i * info.channels] as number;
  return { data: out, width: info.width, height: info.height };
}

/** Number of annotated regions per frame id, from the dataset's index.csv (absent: unknown). */
async function polygonCounts(data: string): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const rows = parseIndexCsv(await readFile(join(data, 'index.csv'), 'utf8').catch(() => ''));
  if (!rows[0] || !('id' in rows[0]) || !('n_polygons' in rows[0])) return counts;
  for (const r of rows) counts.set(r.id ?? '', Number(r.n_polygons));
  return counts;
}

// split-screen frames (two annotated views) count for neither the nodule geometry nor the imaging-area size
const GEOMETRY: (keyof FrameStats)[] = [
  'noduleAreaFraction',
  'noduleAspect',
  'noduleDepth',
  'noduleAreaPx',
  'imagingWidth',
  'imagingHeight',
];

export async function measureDataset(
  data: string,
  split: string,
  limit = 0,
  quiet = false,
): Promise<Omit<MeasuredStats, 'command'>> {
  if (split === 'test')
    throw new Error('measure-ultrasound-stats: the test split is for reporting only; measure train (or val)');
  const splits = JSON.parse(await readFile(join(data, 'split.json'), 'utf8')) as Record<string, unknown>;
  const ids = splits[split];
  if (!Array.isArray(ids)) throw new Error(`${data}/split.json has no list "${split}"`);
  const chosen = (limit > 0 ? ids.slice(0, limit) : ids).map(String);
  const polys = await polygonCounts(data);
  const frames: FrameStats[] = [];
  let geometryFrames = 0;
  const bar = new ProgressBar('measure', chosen.length, quiet);
  for (const id of chosen) {
    const img = await greyRaw(join(data, 'images', `${id}.png`));
    const mask = await greyRaw(join(data, 'masks', `${id}.png`));
    const area = findImagingArea(img.data, img.width, img.height);
    const s = frameStats(img.data, mask.data, img.width, img.height, area);
    if (s) {
      if (polys.get(id) !== 1) for (const k of GEOMETRY) (s[k] as number) = Number.NaN;
      else geometryFrames++;
      frames.push(s);
    }
    bar.tick(id);
  }
  bar.done();
  return {
    about:
      'B-mode statistics measured on real thyroid frames; the phantom (src/capture/phantom.ts) draws with ' +
      'them. Spread over frames: p10/p50/p90.',
    source: `${data} (DDTI)`,
    split,
    frames: frames.length,
    geometryFrames,
    stats: summarise(frames),
  };
}

/** The same statistics on phantom frames (its own ground truth; imaging area = its ROI). */
export function measurePhantom(n: number, seeds: number[]): StatsSummary {
  const frames: FrameStats[] = [];
  for (const seed of seeds) {
    const o = { ...DEFAULT_PHANTOM, seed, nodules: 1, cycleFrames: 0 };
    const g = new PhantomGenerator(o);
    for (let i = 0; i < n; i++) {
      const f = g.render(i * 7);
      // the mask is ROI-sized; place it on the screen
      const mask = new Uint8Array(o.screenWidth * o.screenHeight);
      for (let y = 0; y < o.roi.height; y++)
        mask.set(f.mask.subarray(y * o.roi.width, (y + 1) * o.roi.width), (o.roi.y + y) * o.screenWidth + o.roi.x);
      const s = frameStats(f.screen, mask, o.screenWidth, o.screenHeight, o.roi);
      if (s) frames.push(s);
    }
  }
  return summarise(frames);
}

function fmt(v: Spread | Spread[]): string {
  const one = (s: Spread): string => `${s.p50.toFixed(3)} [${s.p10.toFixed(2)}..${s.p90.toFixed(2)}]`;
  return Array.isArray(v) ? v.map((s) => s.p50.toFixed(2)).join(' ') : one(v);
}

async function main(): Promise<void> {
  const program = new Command('measure-ultrasound-stats')
    .option('--data <dir>', 'dataset folder (images/, masks/, split.json, index.csv)', '../shared/datasets/ddti')
    .addOption(new Option('--split <name>', 'which split to measure').choices(['train', 'val']).default('train'))
    .option('--limit <n>', 'first n frames only', (v) => Number.parseInt(v, 10), 0)
    .option('--out <file>', 'write the measured JSON here')
    .option('--phantom <n>', 'measure n phantom frames per seed instead', (v) => Number.parseInt(v, 10))
    .option('--seeds <list>', 'with --phantom: which seeds, e.g. 1,2,3 or 1-12', '1-3')
    .option('--against <file>', 'with --phantom: a measured JSON to print next to the phantom figures')
    .option('--quiet', 'no progress bar')
    .parse();
  const o = program.opts<{
    data: string;
    split: string;
    limit: number;
    out?: string;
    phantom?: number;
    against?: string;
    seeds: string;
    quiet?: boolean;
  }>();
  if (o.phantom) {
    const seeds = parseIntList(o.seeds, '--seeds');
    const ph = measurePhantom(o.phantom, seeds);
    const ref = o.against ? (JSON.parse(await readFile(o.against, 'utf8')) as MeasuredStats).stats : null;
    console.log(`${'statistic'.padEnd(20)} ${'phantom p50 [p10..p90]'.padEnd(30)} ${ref ? 'DDTI p50 [p10..p90]' : ''}`);
    for (const k of Object.keys(ph) as (keyof StatsSummary)[]) {
      console.log(`${k.padEnd(20)} ${fmt(ph[k]).padEnd(30)} ${ref ? fmt(ref[k]) : ''}`);
    }
    return;
  }
  const measured = await measureDataset(o.data, o.split, o.limit, o.quiet);
  const command =
    `node dist/src/tools/measure-ultrasound-stats.js --data ${o.data} --split ${o.split}` +
    `${o.limit ? ` --limit ${o.limit}` : ''}${o.out ? ` --out ${o.out}` : ''}`;
  const { about, ...rest } = measured;
  const json = JSON.stringify({ about, command, ...rest }, null, 1);
  if (o.out) await writeFile(o.out, `${json}\n`);
  else console.log(json);
  console.error(
    `measured ${measured.frames} ${o.split} frames (${measured.geometryFrames} with one region for the geometry)`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(`measure-ultrasound-stats: ${(err as Error).message}`);
    process.exit(1);
  });
}
