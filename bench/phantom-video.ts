/** A 30 fps H.264 video of phantom screens (with the header band), for benches that need a real video source. */
import { join } from 'node:path';
import { DEFAULT_PHANTOM, PhantomGenerator } from '../src/capture/phantom.js';
import { GreyVideoWriter } from './grey-video.js';

export async function phantomVideo(dir: string, frames = 90): Promise<string> {
  const o = { ...DEFAULT_PHANTOM, nodules: 2, cycleFrames: 60 };
  const g = new PhantomGenerator(o);
  const video = new GreyVideoWriter(join(dir, 'phantom.mp4'), {
    width: o.screenWidth,
    height: o.screenHeight,
    fps: 30,
  });
  for (let i = 0; i < frames; i++) await video.write(g.render(i).screen);
  return video.close();
}
