/**
 * Capture through an ffmpeg child process: ffmpeg only crops the ROI and converts it to full-range
 * grey, and writes raw ROI frames to stdout, read here in exact frame-sized chunks. The frames stay
 * at ROI size: the resize to the model size is the card's, in src/inference/preprocess.ts (sharp),
 * the code that prepares the training data, so a captured frame reaches the model as the same
 * pixels (tests/parity.test.ts); and it runs only for the frames that are processed, not dropped.
 * Used by the v4l2 (capture dongle) and file sources. When ffmpeg exits or fails, the source
 * restarts it with backoff; the daemon never crashes on it.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { Backoff, sleep } from './backoff.js';
import type { CaptureStatus, Frame, FrameSource, Rect } from './frame-source.js';

/** What ffmpeg delivers: the ROI of the capture frame, at its own size. */
export interface FfmpegOutputSpec {
  roi: Rect;
  sourceWidth: number;
  sourceHeight: number;
}

/**
 * The -vf filter chain. Crop to the imaging area first, so nothing outside it is ever processed;
 * `exact=1` so an odd x/y is not rounded down to the chroma grid of a 4:2:0/4:2:2 source (a shift of
 * one pixel against the same ROI cropped from an image). Then grey in full range: a limited-range
 * (tv) Y plane is expanded to 0-255, as training images are; the range of the input comes from the
 * stream (MJPEG: full; untagged YUV, e.g. a YUYV dongle: limited). No scaling here.
 */
export function videoFilter(out: FfmpegOutputSpec): string {
  const r = out.roi;
  return `crop=${r.width}:${r.height}:${r.x}:${r.y}:exact=1,scale=out_range=full,format=gray`;
}

export function outputArgs(out: FfmpegOutputSpec): string[] {
  return ['-an', '-sn', '-vf', videoFilter(out), '-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1'];
}

export interface FfmpegSourceOptions {
  name: string;
  ffmpegPath: string;
  /** everything before the output: input options and -i */
  inputArgs: () => string[];
  output: FfmpegOutputSpec;
  /** restart when ffmpeg ends normally (a loop over a file, a live device); false = end */
  restartOnEnd: boolean;
  logger: Logger;
  backoff?: Backoff;
}

export class FfmpegSource implements FrameSource {
  readonly name: string;
  private child: ChildProcessByStdio<null, Readable, Readable> | null = null;
  private readonly abort = new AbortController();
  private seq = 0;
  private readonly st: CaptureStatus;
  private readonly backoff: Backoff;

  constructor(private readonly opts: FfmpegSourceOptions) {
    this.name = opts.name;
    this.backoff = opts.backoff ?? new Backoff();
    this.st = { state: 'idle', source: opts.name, framesCaptured: 0, badFrames: 0, restarts: 0 };
  }

  status(): CaptureStatus {
    return { ...this.st };
  }

  args(): string[] {
    return [
      '-hide_banner',
      '-loglevel',
      'error',
      '-nostdin',
      ...this.opts.inputArgs(),
      ...outputArgs(this.opts.output),
    ];
  }

  async *frames(): AsyncIterable<Frame> {
    const out = this.opts.output;
    const roiFrame = { width: out.roi.width, height: out.roi.height };
    const frameBytes = roiFrame.width * roiFrame.height;
    while (!this.abort.signal.aborted) {
      this.st.state = this.st.restarts > 0 ? 'retrying' : 'starting';
      let exitReason = '';
      let produced = 0;
      try {
        const child = spawn(this.opts.ffmpegPath, this.args(), { stdio: ['ignore', 'pipe', 'pipe'] });
        this.child = child;
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => {
          stderr = (stderr + d.toString()).slice(-2000);
        });
        const exited = new Promise<string>((resolve) => {
          child.on('error', (err) => resolve(`cannot start ffmpeg: ${err.message}`));
          child.on('close', (code, signal) =>
            resolve(
              code === 0
                ? ''
                : `ffmpeg exited with ${signal ?? `code ${code}`}: ${stderr.trim().split('\n').pop() ?? ''}`,
            ),
          );
        });
        // Copy stdout straight into exact frame-sized buffers: one copy per byte, no concatenation.
        let data = new Uint8Array(frameBytes);
        let filled = 0;
        for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
          // decode itself runs in the ffmpeg process; in-process cost is reassembling the frame
          const t0 = performance.now();
          let offset = 0;
          while (offset < chunk.length) {
            const n = Math.min(frameBytes - filled, chunk.length - offset);
            data.set(chunk.subarray(offset, offset + n), filled);
            filled += n;
            offset += n;
            if (filled < frameBytes) break;
            this.st.state = 'running';
            this.st.framesCaptured++;
            produced++;
            if (produced === 1) this.backoff.reset();
            yield {
              seq: ++this.seq,
              capturedAt: Date.now(),
              ...roiFrame,
              data,
              roi: out.roi,
              sourceWidth: out.sourceWidth,
              sourceHeight: out.sourceHeight,
              decodeMs: performance.now() - t0,
            };
            data = new Uint8Array(frameBytes);
            filled = 0;
          }
        }
        exitReason = await exited;
        if (filled > 0) {
          // a partial frame at the end of the stream is a corrupt frame: skip and count it
          this.st.badFrames++;
          this.opts.logger.warn({ source: this.name, bytes: filled }, 'partial frame dropped');
        }
      } finally {
        this.killChild();
      }
      if (this.abort.signal.aborted) break;
      if (!exitReason && !this.opts.restartOnEnd) {
        this.st.state = 'ended';
        return;
      }
      if (exitReason) {
        this.st.lastError = exitReason;
        this.opts.logger.warn({ source: this.name, err: exitReason, produced }, 'capture failed, retrying');
      }
      this.st.restarts++;
      this.st.state = 'retrying';
      await sleep(exitReason ? this.backoff.next() : 0, this.abort.signal);
    }
    this.st.state = 'stopped';
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.killChild();
    this.st.state = 'stopped';
  }

  private killChild(): void {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    this.child = null;
  }
}
