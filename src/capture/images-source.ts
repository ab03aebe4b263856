/** A folder of PNG/JPEG frames played at a configured rate (e.g. a dataset), optionally looping. */
import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import sharp from 'sharp';
import type { Logger } from 'pino';
import type { Preprocessing } from '../inference/model-card.js';
import { decodeToModelGrey } from '../inference/preprocess.js';
import { Backoff, sleep } from './backoff.js';
import type { CaptureStatus, Frame, FrameSource, Rect } from './frame-source.js';

export interface ImagesOptions {
  dir: string;
  fps: number;
  loop: boolean;
  /** crop in image pixels; absent = the whole image */
  roi?: Rect;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

export async function listImages(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names
    .filter((n) => IMAGE_EXT.has(extname(n).toLowerCase()))
    .sort()
    .map((n) => join(dir, n));
}

/** Largest image decoded: sharp's default limitInputPixels (0x3FFF squared). */
export const MAX_IMAGE_PIXELS = 0x3fff * 0x3fff;

/** One encoded image (PNG/JPEG bytes) as a Frame: ROI crop (default: whole image), grey, model size. */
export async function frameFromImage(bytes: Buffer, spec: Preprocessing, seq: number, roiOpt?: Rect): Promise<Frame> {
  const t0 = performance.now();
  if (bytes.length === 0) throw new Error('empty file (0 bytes)');
  const meta = await sharp(bytes, { limitInputPixels: false }).metadata(); // header only; the limit is checked below
  const sw = meta.width ?? 0;
  const sh = meta.height ?? 0;
  // sharp's own decode limit, checked here from the header so the error says what is wrong
  if (sw * sh > MAX_IMAGE_PIXELS)
    throw new Error(`image is ${sw}x${sh} (${sw * sh} pixels), over the limit of ${MAX_IMAGE_PIXELS}`);
  const grey = await decodeToModelGrey(bytes, spec, roiOpt);
  return {
    seq,
    capturedAt: Date.now(),
    width: grey.width,
    height: grey.height,
    data: grey.data,
    roi: roiOpt ?? { x: 0, y: 0, width: sw, height: sh },
    sourceWidth: sw,
    sourceHeight: sh,
    decodeMs: performance.now() - t0,
  };
}

export class ImagesSource implements FrameSource {
  readonly name: string;
  private readonly abort = new AbortController();
  private seq = 0;
  private readonly st: CaptureStatus;
  private readonly backoff = new Backoff();

  constructor(
    private readonly opts: ImagesOptions,
    private readonly spec: Preprocessing,
    private readonly logger: Logger,
  ) {
    this.name = `images:${opts.dir}`;
    this.st = { state: 'idle', source: this.name, framesCaptured: 0, badFrames: 0, restarts: 0 };
  }

  status(): CaptureStatus {
    return { ...this.st };
  }

  async *frames(): AsyncIterable<Frame> {
    const period = 1000 / this.opts.fps;
    let next = performance.now();
    while (!this.abort.signal.aborted) {
      let files: string[];
      try {
        files = await listImages(this.opts.dir);
        if (files.length === 0) throw new Error(`no PNG/JPEG files in ${this.opts.dir}`);
      } catch (err) {
        this.st.state = 'retrying';
        this.st.lastError = (err as Error).message;
        this.logger.warn({ source: this.name, err }, 'cannot list images, retrying');
        await sleep(this.backoff.next(), this.abort.signal);
        continue;
      }
      this.backoff.reset();
      for (const file of files) {
        if (this.abort.signal.aborted) break;
        await sleep(Math.max(0, next - performance.now()), this.abort.signal);
        next = Math.max(next + period, performance.now() - period);
        const t0 = performance.now();
        try {
          const frame = await frameFromImage(await readFile(file), this.spec, this.seq + 1, this.opts.roi);
          this.seq++;
          this.st.state = 'running';
          this.st.framesCaptured++;
          yield { ...frame, decodeMs: performance.now() - t0 };
        } catch (err) {
          // a broken frame is skipped and counted; the next one is tried
          this.st.badFrames++;
          this.st.lastError = `${file}: ${(err as Error).message}`;
          this.logger.warn({ source: this.name, file, err }, 'bad frame skipped');
        }
      }
      if (!this.opts.loop) break;
    }
    this.st.state = this.abort.signal.aborted ? 'stopped' : 'ended';
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.st.state = 'stopped';
  }
}
