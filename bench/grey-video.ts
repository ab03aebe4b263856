/**
 * Grey frames into an H.264 file through ffmpeg's stdin, for benches and tests that need a real video
 * source. No B-frames, so a frame's position in the file is the order it was written in.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export interface GreyVideoOptions {
  width: number;
  height: number;
  fps: number;
  /** extra encoder arguments, e.g. ['-crf', '18', '-g', '30'] */
  encoder?: string[];
  ffmpegPath?: string;
}

export class GreyVideoWriter {
  private readonly ff: ChildProcessWithoutNullStreams;
  private readonly done: Promise<void>;

  constructor(
    readonly path: string,
    o: GreyVideoOptions,
  ) {
    const args = ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'rawvideo', '-pix_fmt', 'gray'];
    args.push('-s', `${o.width}x${o.height}`, '-r', String(o.fps), '-i', 'pipe:0');
    args.push('-c:v', 'libx264', '-preset', 'veryfast', '-bf', '0', ...(o.encoder ?? []), '-pix_fmt', 'yuv420p', path);
    this.ff = spawn(o.ffmpegPath ?? 'ffmpeg', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    this.ff.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    this.done = new Promise((resolve, reject) => {
      this.ff.on('error', reject);
      this.ff.on('close', (code) =>
        code === 0 ? resolve() : reject(new Error(`ffmpeg encode failed: ${err.trim()}`)),
      );
    });
  }

  /** One frame; copied, so the caller may draw the next one into the same buffer at once. */
  async write(frame: Uint8Array): Promise<void> {
    if (!this.ff.stdin.write(Buffer.from(frame))) await new Promise((r) => this.ff.stdin.once('drain', r));
  }

  /** Resolves with the path once ffmpeg has written the whole file. */
  async close(): Promise<string> {
    this.ff.stdin.end();
    await this.done;
    return this.path;
  }
}
