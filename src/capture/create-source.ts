/**
 * Builds the configured FrameSource: the switch over every source type (a new source is added here and in
 * capture/config.ts).
 */
import type { Logger } from 'pino';
import type { CaptureConfig } from './config.js';
import type { Preprocessing } from '../inference/model-card.js';
import { createFileSource } from './file-source.js';
import type { FrameSource } from './frame-source.js';
import { ImagesSource } from './images-source.js';
import { DEFAULT_PHANTOM } from './phantom.js';
import { PhantomSource } from './phantom-source.js';
import { createV4l2Source } from './v4l2-source.js';

export function createSource(c: CaptureConfig, spec: Preprocessing, logger: Logger): FrameSource {
  switch (c.source) {
    case 'phantom':
      return new PhantomSource(
        {
          ...DEFAULT_PHANTOM,
          seed: c.phantom.seed,
          nodules: c.phantom.nodules,
          cycleFrames: c.phantom.cycleFrames,
          visibleFraction: c.phantom.visibleFraction,
          liftWhenAbsent: c.phantom.liftWhenAbsent,
          fps: c.phantom.fps,
          maxFrames: 0,
        },
        spec,
      );
    case 'images':
      return new ImagesSource(
        { dir: c.images.dir, fps: c.images.fps, loop: c.images.loop, roi: c.roi ?? undefined },
        spec,
        logger,
      );
    case 'v4l2':
      return createV4l2Source(
        {
          device: c.v4l2.device,
          inputFormat: c.v4l2.inputFormat,
          captureWidth: c.v4l2.width,
          captureHeight: c.v4l2.height,
          fps: c.v4l2.fps,
        },
        { roi: c.roi!, sourceWidth: c.v4l2.width, sourceHeight: c.v4l2.height },
        c.ffmpegPath,
        logger,
      );
    case 'file':
      return createFileSource(
        { path: c.file.path, realtime: c.file.realtime, loop: c.file.loop },
        { roi: c.roi!, sourceWidth: c.file.width, sourceHeight: c.file.height },
        c.ffmpegPath,
        logger,
      );
  }
}
