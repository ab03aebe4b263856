/**
 * ARM64 proof, last step: masks of the arm64 run against the x64 run (IoU per frame), and both
 * runs' accuracy, from the folders and summary lines deploy/arm64/proof.sh wrote. One JSON line.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeMask } from '../inference/preprocess.js';
import { iou } from '../inference/scoring.js';

async function compare(out: string, set: string): Promise<Record<string, unknown> | null> {
  const a = join(out, `arm64-${set}`);
  const x = join(out, `x64-${set}`);
  let names: string[];
  try {
    names = (await readdir(x)).filter((n) => n.endsWith('.mask.png')).sort();
  } catch {
    return null;
  }
  const ious: number[] = [];
  for (const n of names) {
    const xm = await readFile(join(x, n));
    const meta = JSON.parse(await readFile(join(x, n.replace(/\.mask\.png$/, '.json')), 'utf8')) as {
      width: number;
      height: number;
    };
    ious.push(
      iou(
        await decodeMask(await readFile(join(a, n)), meta.width, meta.height),
        await decodeMask(xm, meta.width, meta.height),
      ),
    );
  }
  const summary = async (f: string) =>
    JSON.parse((await readFile(join(out, f), 'utf8')).trim().split('\n').at(-1) as string) as {
      meanIoU: number | null;
      msPerImage: number;
    };
  const arm = await summary(`arm64-${set}.json`);
  const x64 = await summary(`x64-${set}.json`);
  const mean = ious.reduce((s, v) => s + v, 0) / Math.max(1, ious.length);
  return {
    frames: ious.length,
    armVsX64MeanIoU: Math.round(mean * 10000) / 10000,
    armVsX64MinIoU: Math.round(Math.min(...ious) * 10000) / 10000,
    accuracyIoU: { arm64: arm.meanIoU, x64: x64.meanIoU },
    msPerFrame: { arm64Emulated: arm.msPerImage, x64: x64.msPerImage },
  };
}

const out = process.argv[2] ?? 'deploy/arm64/.out';
console.log(JSON.stringify({ phantom: await compare(out, 'phantom'), real: await compare(out, 'real') }));
