import { execFileSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { FfmpegSource, outputArgs, videoFilter } from '../src/capture/ffmpeg-source.js';
import { createFileSource, fileInputArgs } from '../src/capture/file-source.js';
import type { CaptureStatus, Frame, FrameSource } from '../src/capture/frame-source.js';
import { ImagesSource } from '../src/capture/images-source.js';
import { createV4l2Source, v4l2InputArgs } from '../src/capture/v4l2-source.js';
import { Backoff } from '../src/capture/backoff.js';
import { SMALL_SPEC, logger, tempDir } from './helpers/fixtures.js';

async function take(src: FrameSource, n: number, timeoutMs = 20_000): Promise<Frame[]> {
  const out: Frame[] = [];
  const timer = setTimeout(() => void src.stop(), timeoutMs);
  for await (const f of src.frames()) {
    out.push(f);
    if (out.length >= n) break;
  }
  clearTimeout(timer);
  await src.stop();
  return out;
}

/**
 * Starts a source that cannot produce frames, waits until it reports the fault, stops it, and
 * checks the iteration ended cleanly (nothing thrown). Returns the status seen while failing.
 */
async function faultStatus(src: FrameSource): Promise<CaptureStatus> {
  const next = src.frames()[Symbol.asyncIterator]().next();
  for (let i = 0; i < 100 && !src.status().lastError; i++) await new Promise((r) => setTimeout(r, 50));
  const seen = src.status();
  await src.stop();
  expect((await next).done).toBe(true);
  return seen;
}

/** A short test video from ffmpeg's own test source (real ffmpeg, real file), in a temp dir. */
async function testVideo(frames: number): Promise<string> {
  const path = join(await tempDir(), 'clip.mp4');
  makeVideo(path, frames);
  return path;
}

/** Writes a short grey test video with ffmpeg's own test source (real ffmpeg, real file). */
function makeVideo(path: string, frames: number, w = 160, h = 120): void {
  execFileSync('ffmpeg', [
    '-hide_banner',
    '-loglevel',
    'error',
    '-y',
    '-f',
    'lavfi',
    '-i',
    `testsrc=size=${w}x${h}:rate=25`,
    '-frames:v',
    String(frames),
    '-pix_fmt',
    'yuv420p',
    path,
  ]);
}

// the phantom's own tests: tests/phantom.test.ts

describe('images source', () => {
  it('plays a folder at its rate, skips and counts a broken frame', async () => {
    const dir = await tempDir();
    for (let i = 0; i < 3; i++) {
      const px = Buffer.alloc(80 * 60 * 3, 40 + i * 50);
      await sharp(px, { raw: { width: 80, height: 60, channels: 3 } })
        .png()
        .toFile(join(dir, `f${i}.png`));
    }
    await writeFile(join(dir, 'f1b.png'), 'this is not a png');
    const src = new ImagesSource({ dir, fps: 50, loop: false }, SMALL_SPEC, logger);
    const t0 = performance.now();
    const frames = await take(src, 10);
    expect(frames).toHaveLength(3);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(3 * 20 - 5); // paced at 50 fps
    expect(frames.map((f) => f.data[0])).toEqual([40, 90, 140]);
    expect(frames[0]!.roi).toEqual({ x: 0, y: 0, width: 80, height: 60 });
    expect(src.status().badFrames).toBe(1);
    expect(src.status().lastError).toMatch(/f1b\.png/);
  });

  it('crops the ROI before anything else', async () => {
    const dir = await tempDir();
    const px = Buffer.alloc(100 * 100, 0);
    for (let y = 50; y < 100; y++) for (let x = 0; x < 100; x++) px[y * 100 + x] = 200;
    await sharp(px, { raw: { width: 100, height: 100, channels: 1 } })
      .png()
      .toFile(join(dir, 'a.png'));
    const src = new ImagesSource(
      { dir, fps: 100, loop: false, roi: { x: 10, y: 50, width: 80, height: 50 } },
      SMALL_SPEC,
      logger,
    );
    const [f] = await take(src, 1);
    expect(Math.min(...f!.data)).toBe(200); // the dark "header" half never reaches the frame
  });

  it('reports a missing folder and retries instead of crashing', async () => {
    const st = await faultStatus(
      new ImagesSource({ dir: '/nonexistent/frames', fps: 10, loop: true }, SMALL_SPEC, logger),
    );
    expect(st.state).toBe('retrying');
    expect(st.lastError).toMatch(/nonexistent/);
  });
});

describe('ffmpeg sources', () => {
  const out = { roi: { x: 20, y: 10, width: 120, height: 100 }, sourceWidth: 160, sourceHeight: 120 };

  it('builds v4l2 arguments: device, format, size, fps, exact ROI crop, full-range grey (unscaled), raw stdout', () => {
    const args = v4l2InputArgs({
      device: '/dev/video2',
      inputFormat: 'mjpeg',
      captureWidth: 1920,
      captureHeight: 1080,
      fps: 30,
    });
    expect(args).toEqual([
      '-f',
      'v4l2',
      '-input_format',
      'mjpeg',
      '-video_size',
      '1920x1080',
      '-framerate',
      '30',
      '-fflags',
      'nobuffer',
      '-i',
      '/dev/video2',
    ]);
    expect(videoFilter(out)).toBe('crop=120:100:20:10:exact=1,scale=out_range=full,format=gray');
    expect(outputArgs(out).slice(-5)).toEqual(['-f', 'rawvideo', '-pix_fmt', 'gray', 'pipe:1']);
    expect(fileInputArgs({ path: 'a.mp4', realtime: true, loop: true })).toEqual([
      '-re',
      '-stream_loop',
      '-1',
      '-i',
      'a.mp4',
    ]);
  });

  it('reads a video file in exact frame-sized chunks', async () => {
    const video = await testVideo(12);
    const src = createFileSource({ path: video, realtime: false, loop: false }, out, 'ffmpeg', logger);
    const frames = await take(src, 100);
    expect(frames).toHaveLength(12);
    // the ROI as captured: the frame processor resizes it with the card's kernel (tests/parity.test.ts)
    expect(frames.every((f) => f.width === 120 && f.height === 100 && f.data.length === 120 * 100)).toBe(true);
    expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(src.status().badFrames).toBe(0);
  });

  it('loops a file when asked', async () => {
    const video = await testVideo(5);
    const src = createFileSource({ path: video, realtime: false, loop: true }, out, 'ffmpeg', logger);
    const frames = await take(src, 12);
    expect(frames).toHaveLength(12);
  });

  it('restarts ffmpeg killed mid-stream, with backoff, and keeps counting frames', async () => {
    const video = await testVideo(50);
    const src = new FfmpegSource({
      name: 'test',
      ffmpegPath: 'ffmpeg',
      inputArgs: () => ['-re', '-i', video],
      output: out,
      restartOnEnd: false,
      logger,
      backoff: new Backoff(50, 200),
    });
    const frames: Frame[] = [];
    let killed = false;
    for await (const f of src.frames()) {
      frames.push(f);
      if (frames.length === 5 && !killed) {
        killed = true;
        (src as unknown as { child: { kill: (s: string) => void } }).child.kill('SIGKILL');
      }
      if (frames.length >= 20) break;
    }
    await src.stop();
    const st = src.status();
    expect(st.restarts).toBeGreaterThanOrEqual(1);
    expect(st.lastError).toMatch(/ffmpeg exited with SIGKILL/);
    // sequence numbers keep rising across the restart
    expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('a missing capture device is reported and retried, never thrown', async () => {
    const st = await faultStatus(
      createV4l2Source(
        { device: '/dev/video-missing', inputFormat: 'mjpeg', captureWidth: 160, captureHeight: 120, fps: 30 },
        out,
        'ffmpeg',
        logger,
      ),
    );
    expect(st.state).toBe('retrying');
    expect(st.lastError).toMatch(/ffmpeg exited/);
  });

  it('an unreadable file is reported and retried', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'broken.mp4'), 'not a video at all');
    const st = await faultStatus(
      createFileSource({ path: join(dir, 'broken.mp4'), realtime: false, loop: false }, out, 'ffmpeg', logger),
    );
    expect(st.lastError).toMatch(/ffmpeg exited/);
    // and retried with backoff, not given up: ffmpeg is started again and the state says so
    const again = createFileSource(
      { path: join(dir, 'broken.mp4'), realtime: false, loop: false },
      out,
      'ffmpeg',
      logger,
    );
    const next = again.frames()[Symbol.asyncIterator]().next();
    for (let i = 0; i < 200 && again.status().restarts < 2; i++) await new Promise((r) => setTimeout(r, 50));
    const retried = again.status();
    await again.stop();
    expect((await next).done).toBe(true);
    expect(retried.restarts).toBeGreaterThanOrEqual(2);
    expect(retried.state).toBe('retrying');
  });

  it('a missing ffmpeg binary is reported, not thrown', async () => {
    const st = await faultStatus(
      createFileSource({ path: 'x.mp4', realtime: false, loop: false }, out, '/nonexistent/ffmpeg', logger),
    );
    expect(st.lastError).toMatch(/cannot start ffmpeg/);
  });
});
