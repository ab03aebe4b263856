/** Any video file ffmpeg reads, at its own rate (-re) or as fast as possible, optionally looping. */
import type { Logger } from 'pino';
import { FfmpegSource, type FfmpegOutputSpec } from './ffmpeg-source.js';

export interface FileOptions {
  path: string;
  realtime: boolean;
  loop: boolean;
}

export function fileInputArgs(o: FileOptions): string[] {
  return [...(o.realtime ? ['-re'] : []), ...(o.loop ? ['-stream_loop', '-1'] : []), '-i', o.path];
}

export function createFileSource(
  o: FileOptions,
  output: FfmpegOutputSpec,
  ffmpegPath: string,
  logger: Logger,
): FfmpegSource {
  return new FfmpegSource({
    name: `file:${o.path}`,
    ffmpegPath,
    inputArgs: () => fileInputArgs(o),
    output,
    restartOnEnd: o.loop,
    logger,
  });
}
