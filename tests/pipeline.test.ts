import { describe, expect, it } from 'vitest';
import type { CaptureStatus, Frame, FrameSource } from '../src/capture/frame-source.js';
import { LatestFrameSlot } from '../src/capture/latest-frame-slot.js';
import { Pipeline } from '../src/capture/pipeline.js';
import type { FrameResult } from '../src/inference/frame-processor.js';
import { RollingSamples } from '../src/capture/pipeline-stats.js';
import { logger } from './helpers/fixtures.js';

/** A source that produces a frame every `periodMs` regardless of the consumer (like a camera). */
class FastSource implements FrameSource {
  readonly name = 'fast';
  private stopped = false;
  produced = 0;
  constructor(
    private readonly periodMs: number,
    private readonly total: number,
  ) {}
  status(): CaptureStatus {
    return { state: 'running', source: this.name, framesCaptured: this.produced, badFrames: 0, restarts: 0 };
  }
  async *frames(): AsyncIterable<Frame> {
    while (!this.stopped && this.produced < this.total) {
      await new Promise((r) => setTimeout(r, this.periodMs));
      this.produced++;
      yield {
        seq: this.produced,
        capturedAt: Date.now(),
        width: 4,
        height: 4,
        data: new Uint8Array(16),
        roi: { x: 0, y: 0, width: 4, height: 4 },
        sourceWidth: 4,
        sourceHeight: 4,
      };
    }
  }
  async stop(): Promise<void> {
    this.stopped = true;
  }
}

/** Pure fake of the processor: takes `ms` per frame. */
function slowHandler(ms: number, seen: number[]) {
  return {
    async process(f: Frame): Promise<FrameResult> {
      seen.push(f.seq);
      await new Promise((r) => setTimeout(r, ms));
      return {
        seq: f.seq,
        capturedAt: f.capturedAt,
        processedAt: Date.now(),
        width: 4,
        height: 4,
        roi: f.roi,
        sourceWidth: 4,
        sourceHeight: 4,
        nodules: [],
        mask: new Uint8Array(16),
        image: { width: 4, height: 4, data: f.data },
        timingsMs: { decode: 0, preprocess: 1, inference: ms, postprocess: 1 },
        imaging: {
          imaging: true,
          reason: null,
          frameOk: true,
          structureChange: null,
          viewChanged: false,
          rescaled: null,
          stats: { mean: 0, std: 0, brightFraction: 0, rowStructure: 0, diff: null, blocks: new Float64Array(48) },
        },
      };
    },
  };
}

describe('latest frame wins', () => {
  it('the slot keeps one item, replaces it and counts the drop', async () => {
    const s = new LatestFrameSlot<number>();
    expect(s.put(1)).toBe(false);
    expect(s.put(2)).toBe(true);
    expect(s.put(3)).toBe(true);
    expect(s.size).toBe(1);
    expect(s.dropped).toBe(2);
    expect(await s.take()).toBe(3);
    const waiting = s.take();
    s.put(4); // hand-off to a waiting consumer drops nothing
    expect(await waiting).toBe(4);
    s.close();
    expect(await s.take()).toBeNull();
  });

  it('with a source 10x faster than inference: newest frames processed, older dropped and counted', async () => {
    const seen: number[] = [];
    const src = new FastSource(5, 120);
    const p = new Pipeline(src, slowHandler(50, seen), logger);
    const results: number[] = [];
    p.onResult((r) => results.push(r.seq));
    p.start();
    await p.finished();
    const s = p.stats.summary();
    expect(src.produced).toBe(120);
    expect(s.processed).toBe(results.length);
    expect(s.processed).toBeLessThan(40);
    expect(s.dropped).toBeGreaterThan(80);
    expect(s.processed + s.dropped).toBe(120);
    // strictly increasing sequence numbers: never an older frame after a newer one
    expect(seen.every((v, i) => i === 0 || v > seen[i - 1]!)).toBe(true);
    expect(s.stagesMs.inference.p50).toBe(50);
  });

  it('a failing frame is counted and the pipeline keeps serving', async () => {
    const src = new FastSource(2, 10);
    let n = 0;
    const p = new Pipeline(
      src,
      {
        async process(f: Frame) {
          n++;
          if (n === 2) throw new Error('corrupt tensor');
          return slowHandler(0, []).process(f);
        },
      },
      logger,
    );
    p.start();
    await p.finished();
    expect(p.stats.errors).toBe(1);
    expect(p.lastError).toMatch(/corrupt tensor/);
    expect(p.stats.processed).toBeGreaterThan(0);
  });

  it('stop() finishes the frame in flight and ends both loops', async () => {
    const seen: number[] = [];
    const p = new Pipeline(new FastSource(1, 1_000_000), slowHandler(30, seen), logger);
    const done: number[] = [];
    p.onResult((r) => done.push(r.seq));
    p.start();
    await new Promise((r) => setTimeout(r, 100));
    await p.stop();
    expect(done.length).toBe(seen.length); // nothing started was abandoned
  });
});

describe('rolling samples', () => {
  it('percentiles over a bounded window', () => {
    const r = new RollingSamples(100);
    for (let i = 1; i <= 1000; i++) r.add(i);
    expect(r.count).toBe(100);
    expect(r.percentile(50)).toBe(950);
    expect(r.percentile(99)).toBe(999);
  });
});
