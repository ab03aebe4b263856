/** A 30 fps H.264 video of phantom screens (with the header band), for benches that need a real video source. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DEFAULT_PHANTOM, PhantomGenerator } from '../src/capture/phantom.js';

export async function phantomVideo(dir: string, frames = 90): Promise<string> {
  const o = { ...DEFAULT_PHANTOM, nodules: 2, cycleFrames: 60 };
  const g = new PhantomGenerator(o);
  const path = join(dir, 'phantom.mp4');
  const ff = spawn(
    'ffmpeg',
    [
      '-hide_banner',
      '-loglevel',
      'error',
      '-y',
      '-f',
      'rawvideo',
      '-pix_fmt',
      'gray',
      '-s',
      `${o.screenWidth}x${o.screenHeight}`,
      '-r',
      '30',
      '-i',
      'pipe:0',
      '-pix_fmt',
      'yuv420p',
      '-c:v',
      'libx264',
      '-preset',
      'veryfast',
      path,
    ],
    { stdio: ['pipe', 'ignore', 'inherit'] },
  );
  for (let i = 0; i < frames; i++) {
    if (!ff.stdin.write(Buffer.from(g.render(i).screen))) await new Promise((r) => ff.stdin.once('drain', r));
  }
  ff.stdin.end();
  await new Promise((r) => ff.once('close', r));
  return path;
}
