/** Rolling per-stage latency percentiles and frame-rate counters (bounded memory). */
export class RollingSamples {
  private readonly buf: Float64Array;
  private n = 0;
  private i = 0;

  constructor(capacity = 512) {
    this.buf = new Float64Array(capacity);
  }

  add(v: number): void {
    this.buf[this.i] = v;
    this.i = (this.i + 1) % this.buf.length;
    if (this.n < this.buf.length) this.n++;
  }

  percentile(p: number): number | null {
    if (this.n === 0) return null;
    const sorted = Array.from(this.buf.subarray(0, this.n)).sort((a, b) => a - b);
    const idx = Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1));
    return sorted[idx] as number;
  }

  get count(): number {
    return this.n;
  }
}

export const STAGES = ['decode', 'preprocess', 'inference', 'postprocess', 'total'] as const;
export type Stage = (typeof STAGES)[number];

export interface StageSummary {
  p50: number | null;
  p99: number | null;
}

/** Events per second over a sliding window of timestamps. */
export class RateMeter {
  private readonly times: number[] = [];
  constructor(private readonly windowMs = 5000) {}

  mark(now = performance.now()): void {
    this.times.push(now);
    this.trim(now);
  }

  rate(now = performance.now()): number {
    this.trim(now);
    return this.times.length / (this.windowMs / 1000);
  }

  private trim(now: number): void {
    while (this.times.length && (this.times[0] as number) < now - this.windowMs) this.times.shift();
  }
}

export interface PipelineSummary {
  processed: number;
  dropped: number;
  errors: number;
  processedFps: number;
  droppedFps: number;
  stagesMs: Record<Stage, StageSummary>;
}

export class PipelineStats {
  readonly stages: Record<Stage, RollingSamples> = Object.fromEntries(
    STAGES.map((s) => [s, new RollingSamples()]),
  ) as Record<Stage, RollingSamples>;
  readonly processedRate = new RateMeter();
  readonly droppedRate = new RateMeter();
  processed = 0;
  dropped = 0;
  errors = 0;

  summary(): PipelineSummary {
    const round = (v: number | null) => (v === null ? null : Math.round(v * 100) / 100);
    return {
      processed: this.processed,
      dropped: this.dropped,
      errors: this.errors,
      processedFps: Math.round(this.processedRate.rate() * 100) / 100,
      droppedFps: Math.round(this.droppedRate.rate() * 100) / 100,
      stagesMs: Object.fromEntries(
        STAGES.map((s) => [
          s,
          { p50: round(this.stages[s].percentile(50)), p99: round(this.stages[s].percentile(99)) },
        ]),
      ) as Record<Stage, StageSummary>,
    };
  }
}
