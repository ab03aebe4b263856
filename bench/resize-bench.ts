/**
 * The cost of one preprocessing (issue 13): ffmpeg used to scale the ROI to the model size in its own
 * process; now it only crops and converts to full-range grey, and src/inference/preprocess.ts resizes
 * with the card's kernel (the same code training data goes through). This measures, in one run, what
 * moved: ffmpeg's CPU per frame with and without its scale step (its own `-benchmark` figures), and the
 * in-process resize per frame, for a 1080p capture dongle's ROI.
 *
 *   node dist/bench/resize-bench.js
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { videoFilter } from '../src/capture/ffmpeg-source.js';
import { loadModelCard } from '../src/inference/model-card.js';
import { toModelSize } from '../src/inference/preprocess.js';

const FRAMES = 300;
const ROI = { x: 320, y: 90, width: 1200, height: 900 };

/** ffmpeg's own user+system CPU seconds for decoding the clip through `filter` to raw grey. */
function ffmpegCpuS(clip: string, filter: string): number {
  const r = spawnSync(
    'ffmpeg',
    [
      '-hide_banner',
      '-benchmark',
      '-i',
      clip,
      '-an',
      '-vf',
      filter,
      '-f',
      'rawvideo',
      '-pix_fmt',
      'gray',
      '-y',
      '/dev/null',
    ],
    { encoding: 'utf8' },
  );
  const m = /bench: utime=([\d.]+)s stime=([\d.]+)s/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`ffmpeg failed: ${r.stderr.slice(-500)}`);
  return Number(m[1]) + Number(m[2]);
}

async function main(): Promise<void> {
  const card = await loadModelCard('models/thyroid-nodule-int8.json');
  const spec = card.preprocessing;
  const dir = await mkdtemp(join(tmpdir(), 'te-resize-bench-'));
  try {
    // a dongle's stream: 1080p MJPEG with moving detail
    const clip = join(dir, 'dongle.mkv');
    const enc = spawnSync('ffmpeg', [
      '-hide_banner',
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      `testsrc2=size=1920x1080:rate=30:duration=${FRAMES / 30}`,
      '-c:v',
      'mjpeg',
      '-q:v',
      '4',
      '-pix_fmt',
      'yuvj422p',
      '-y',
      clip,
    ]);
    if (enc.status !== 0) throw new Error(`encoding the clip failed: ${enc.stderr.toString()}`);
    const now = videoFilter({ roi: ROI, sourceWidth: 1920, sourceHeight: 1080 });
    const before =
      `crop=${ROI.width}:${ROI.height}:${ROI.x}:${ROI.y},` +
      `scale=${spec.width}:${spec.height}:flags=bilinear,format=gray`;
    const cpuNow = ffmpegCpuS(clip, now);
    const cpuBefore = ffmpegCpuS(clip, before);
    // the in-process resize of every cropped frame (sharp, the card's kernel)
    const frame = { width: ROI.width, height: ROI.height, data: new Uint8Array(ROI.width * ROI.height) };
    for (let i = 0; i < frame.data.length; i++) frame.data[i] = (i * 7 + (i >> 11)) & 255;
    const ms: number[] = [];
    for (let i = 0; i < 10; i++) await toModelSize(frame, spec); // warm-up
    for (let i = 0; i < FRAMES; i++) {
      const t = performance.now();
      await toModelSize(frame, spec);
      ms.push(performance.now() - t);
    }
    ms.sort((a, b) => a - b);
    const p = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(2);
    const perFrame = (s: number) => ((s / FRAMES) * 1000).toFixed(2);
    console.log('\n## One preprocessing: what the resize costs (1080p MJPEG dongle, ROI 1200x900 -> model size)\n');
    console.log(
      `${FRAMES} frames, model input ${spec.width}x${spec.height}, resize kernel \`${spec.resizeKernel}\`.\n`,
    );
    console.log('| path | ffmpeg CPU ms/frame | in-process resize ms/frame p50 / p99 |');
    console.log('| --- | --- | --- |');
    console.log(`| before: ffmpeg crops, scales (bilinear), greys | ${perFrame(cpuBefore)} | – |`);
    console.log(
      '| now: ffmpeg crops and greys (full range); preprocess.ts resizes ' +
        `| ${perFrame(cpuNow)} | ${p(0.5)} / ${p(0.99)} |`,
    );
    const delta = Number(perFrame(cpuNow)) - Number(perFrame(cpuBefore)) + Number(p(0.5));
    console.log(
      `\nNet CPU per frame of the change: ${delta.toFixed(2)} ms (ffmpeg's difference plus the in-process resize; ` +
        'the pipe also carries the whole ROI instead of the model-size frame).',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error((err as Error).stack ?? err);
  process.exit(1);
});
