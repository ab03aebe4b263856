/** The capture dongle: a V4L2 device read by ffmpeg. */
import type { Logger } from 'pino';
import { FfmpegSource, type FfmpegOutputSpec } from './ffmpeg-source.js';

export interface V4l2Options {
  device: string;
  inputFormat: 'mjpeg' | 'yuyv422';
  captureWidth: number;
  captureHeight: number;
  fps: number;
}

export function v4l2InputArgs(o: V4l2Options): string[] {
  return [
    '-f',
    'v4l2',
    '-input_format',
    o.inputFormat,
    '-video_size',
    `${o.captureWidth}x${o.captureHeight}`,
    '-framerate',
    String(o.fps),
    // live source: never buffer old frames on our side of the device
    '-fflags',
    'nobuffer',
    '-i',
    o.device,
  ];
}

export function createV4l2Source(
  o: V4l2Options,
  output: FfmpegOutputSpec,
  ffmpegPath: string,
  logger: Logger,
): FfmpegSource {
  return new FfmpegSource({
    name: `v4l2:${o.device}`,
    ffmpegPath,
    inputArgs: () => v4l2InputArgs(o),
    output,
    restartOnEnd: true, // an unplugged dongle comes back: keep trying with backoff
    logger,
  });
}
