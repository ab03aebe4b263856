/** Grabs one full, uncropped frame from the configured source (for `thyroid-edge calibrate`). */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import type { CaptureConfig } from './config.js';
import { fileInputArgs } from './file-source.js';
import { listImages } from './images-source.js';
import { DEFAULT_PHANTOM, PhantomGenerator } from './phantom.js';
import { v4l2InputArgs } from './v4l2-source.js';

export interface FullFrame {
  width: number;
  height: number;
  data: Uint8Array;
}

export async function grabFullFrame(c: CaptureConfig): Promise<FullFrame> {
  switch (c.source) {
    case 'phantom': {
      const g = new PhantomGenerator({
        ...DEFAULT_PHANTOM,
        seed: c.phantom.seed,
        nodules: c.phantom.nodules,
        cycleFrames: 0,
        visibleFraction: 1,
      });
      return { width: DEFAULT_PHANTOM.screenWidth, height: DEFAULT_PHANTOM.screenHeight, data: g.render(0).screen };
    }
    case 'images': {
      const [first] = await listImages(c.images.dir);
      if (!first) throw new Error(`no PNG/JPEG files in ${c.images.dir}`);
      const { data, info } = await sharp(await readFile(first))
        .removeAlpha()
        .greyscale()
        .raw()
        .toBuffer({ resolveWithObject: true });
      const grey = new Uint8Array(info.width * info.height);
      for (let i = 0; i < grey.length; i++) grey[i] = data[i * info.channels] as number;
      return { width: info.width, height: info.height, data: grey };
    }
    case 'v4l2':
      return ffmpegGrab(
        c.ffmpegPath,
        v4l2InputArgs({
          device: c.v4l2.device,
          inputFormat: c.v4l2.inputFormat,
          captureWidth: c.v4l2.width,
          captureHeight: c.v4l2.height,
          fps: c.v4l2.fps,
        }),
        c.v4l2.width,
        c.v4l2.height,
      );
    case 'file':
      return ffmpegGrab(
        c.ffmpegPath,
        fileInputArgs({ path: c.file.path, realtime: false, loop: false }),
        c.file.width,
        c.file.height,
      );
  }
}

function ffmpegGrab(ffmpeg: string, input: string[], width: number, height: number): Promise<FullFrame> {
  return new Promise((resolve, reject) => {
    const p = spawn(ffmpeg, [
      '-hide_banner',
      '-loglevel',
      'error',
      '-nostdin',
      ...input,
      '-frames:v',
      '1',
      '-vf',
      `scale=${width}:${height}:out_range=full,format=gray`,
      '-f',
      'rawvideo',
      'pipe:1',
    ]);
    const chunks: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => chunks.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      const buf = Buffer.concat(chunks);
      if (buf.length < width * height)
        return reject(new Error(`could not grab a frame (ffmpeg ${code}): ${err.trim()}`));
      resolve({ width, height, data: new Uint8Array(buf.subarray(0, width * height)) });
    });
  });
}
