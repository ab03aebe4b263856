/**
 * The imaging gate's structure change (src/inference/imaging-gate.ts) over a scan clip, by transition:
 * within each kind of view (a moving probe), and across segment boundaries (cuts, lifted probe). This is
 * what `imagingGate.viewChangeLevel` was chosen from: `node dist/bench/alerts-bench.js --split val --structure`
 * (`--stride K` compares frames K apart, as when a slow box drops K-1 of K frames). Beside the statistic, what the
 * gate itself decides on every K-th frame: cuts (`viewChanged`) and depth or zoom changes (`rescaled`).
 */
import { execFileSync } from 'node:child_process';
import { DEFAULT_GATE, frameStats, ImagingGate, structureChange } from '../src/inference/imaging-gate.js';
import { depthStepAt, type ScanVideo } from './scan-clips.js';

/** Per transition ("within pan", "drift->cut", ...): count and min / p50 / p99 / max of the structure change. */
export function clipStructure(v: ScanVideo, stride = 1, ffmpegPath = 'ffmpeg'): string[] {
  const raw = execFileSync(ffmpegPath, ['-v', 'error', '-i', v.path, '-f', 'rawvideo', '-pix_fmt', 'gray', '-'], {
    maxBuffer: v.width * v.height * (v.frames.length + 8),
  });
  const n = v.width * v.height;
  // each frame's block means once (every frame is compared with the one `stride` before and after it)
  const blocks = v.frames.map(
    (_, i) => frameStats(raw.subarray(i * n, (i + 1) * n), v.width, v.height, DEFAULT_GATE).blocks,
  );
  const key = (i: number) => {
    const [f, p] = [v.frames[i]!, v.frames[i - stride]!];
    // a depth view's step is a transition of its own
    const seg = v.segments[f.segment]!;
    if (f.kind === 'depth' && f.segment === p.segment && i - seg.startFrame === depthStepAt(seg.frames))
      return 'depth step';
    return f.segment === p.segment ? `within ${f.kind}` : `${p.kind}->${f.kind}`;
  };
  const by = new Map<string, number[]>();
  for (let i = stride; i < v.frames.length; i++) {
    const xs = by.get(key(i)) ?? [];
    xs.push(structureChange(blocks[i]!, blocks[i - stride]!));
    by.set(key(i), xs);
  }
  // the gate's own decisions on every stride-th frame (it compares with the last frame that showed tissue)
  const gate = new ImagingGate(DEFAULT_GATE);
  const decided = new Map<string, { cuts: number; rescales: number }>();
  for (let i = 0; i < v.frames.length; i += stride) {
    const g = gate.update(raw.subarray(i * n, (i + 1) * n), v.width, v.height, (i * 1000) / v.fps);
    if (i < stride) continue;
    const d = decided.get(key(i)) ?? { cuts: 0, rescales: 0 };
    if (g.viewChanged) d.cuts++;
    if (g.rescaled !== null) d.rescales++;
    decided.set(key(i), d);
  }
  const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!.toFixed(3);
  const rows = [
    `structure change, frames ${stride} apart (viewChangeLevel ${DEFAULT_GATE.viewChangeLevel}):`,
    '| transition | pairs | min | p50 | p99 | max | gate: cuts | gate: depth or zoom changes |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const [k, xs] of [...by.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    const s = [...xs].sort((x, y) => x - y);
    const d = decided.get(k) ?? { cuts: 0, rescales: 0 };
    rows.push(
      `| ${k} | ${s.length} | ${q(s, 0)} | ${q(s, 0.5)} | ${q(s, 0.99)} | ${q(s, 1)} | ${d.cuts} | ${d.rescales} |`,
    );
  }
  return rows;
}
