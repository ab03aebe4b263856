/**
 * Frame preprocessing: grey -> resize (the card's kernel) -> Gaussian blur -> CLAHE -> float tensor.
 *
 * This is the single implementation: the daemon runs it on every frame and the training data is
 * prepared through it (src/tools/prepare-dataset.ts), so the model is trained on exactly the
 * pixels it will be served. Capture sources only crop and convert to full-range grey; the resize
 * to the model size is done here for every source (decodeToModelGrey for image files, resizeGrey
 * for raw frames: the phantom's, and ffmpeg's ROI frames in the frame processor). Parameters come
 * from the model card.
 */
import sharp from 'sharp';
import { FastEnhancer } from './enhance-fast.js';
import type { Preprocessing } from './model-card.js';

export interface GreyFrame {
  width: number;
  height: number;
  /** one byte per pixel, row-major */
  data: Uint8Array;
}

/**
 * Decode any image sharp reads (PNG/JPEG, grey or colour) into a grey frame at the model size,
 * cropped first to `roi` when given (the header outside the imaging area is never processed).
 */
export async function decodeToModelGrey(
  input: Buffer | string,
  spec: Preprocessing,
  roi?: { x: number; y: number; width: number; height: number },
): Promise<GreyFrame> {
  let img = sharp(input);
  if (roi) img = img.extract({ left: roi.x, top: roi.y, width: roi.width, height: roi.height });
  const { data, info } = await img
    .removeAlpha()
    .greyscale()
    .resize(spec.width, spec.height, { fit: 'fill', kernel: spec.resizeKernel })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: onlyFirstChannel(data, info.channels) };
}

/** Gaussian filter then CLAHE (the card's method), on a grey frame already at the model size. Returns grey levels. */
export async function enhance(frame: GreyFrame, spec: Preprocessing, fast?: FastEnhancer): Promise<GreyFrame> {
  if (frame.width !== spec.width || frame.height !== spec.height) {
    throw new Error(`enhance: frame is ${frame.width}x${frame.height}, model expects ${spec.width}x${spec.height}`);
  }
  if (spec.clahe.method === 'tiles') {
    // `fast`: the caller's enhancer for this spec (tables made once); otherwise a one-off
    const e = fast ?? fastEnhancerFor(spec);
    return { width: frame.width, height: frame.height, data: e.run(frame.data) };
  }
  // One libvips pipeline: sharp applies blur before CLAHE (checked by a test against two explicit
  // stages, byte for byte). .greyscale() keeps it 1-channel: libvips would otherwise return sRGB.
  const { data, info } = await sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 1 } })
    .blur(spec.gaussianSigma)
    .clahe({ width: spec.clahe.tileWidth, height: spec.clahe.tileHeight, maxSlope: spec.clahe.maxSlope })
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: onlyFirstChannel(data, info.channels) };
}

/** The tables and buffers of the "tiles" enhancement for a spec (reuse it across frames). */
export function fastEnhancerFor(spec: Preprocessing): FastEnhancer {
  return new FastEnhancer(spec.width, spec.height, spec.gaussianSigma, spec.clahe);
}

/** Grey levels -> normalised float32 NCHW data (N=1). Reuses `out` when given (hot path). */
export function toInputTensorData(frame: GreyFrame, spec: Preprocessing, out?: Float32Array): Float32Array {
  const n = frame.width * frame.height;
  const dst = out && out.length === n ? out : new Float32Array(n);
  const scale = 1 / (255 * spec.std);
  const offset = spec.mean / spec.std;
  const src = frame.data;
  for (let i = 0; i < n; i++) dst[i] = (src[i] as number) * scale - offset;
  return dst;
}

/** Full preprocessing of an encoded image file or buffer to enhanced grey levels. */
export async function preprocessImage(input: Buffer | string, spec: Preprocessing): Promise<GreyFrame> {
  return enhance(await decodeToModelGrey(input, spec), spec);
}

function onlyFirstChannel(data: Buffer, channels: number): Uint8Array {
  // After .greyscale() all channels are equal; take the first.
  if (channels === 1) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const n = data.length / channels;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = data[i * channels] as number;
  return out;
}

/** What resizing takes from the model card. */
export type ResizeSpec = Pick<Preprocessing, 'width' | 'height' | 'resizeKernel'>;

/**
 * A raw grey image (an ffmpeg capture frame, the phantom's screen) to the model size with the card's
 * kernel, cropped first to `roi` when given. Gives the same bytes as decodeToModelGrey on the same
 * pixels stored as an image file, i.e. as training data preparation (tests/parity.test.ts).
 */
export async function resizeGrey(
  frame: GreyFrame,
  spec: ResizeSpec,
  roi?: { x: number; y: number; width: number; height: number },
): Promise<GreyFrame> {
  let img = sharp(frame.data, { raw: { width: frame.width, height: frame.height, channels: 1 } });
  if (roi) img = img.extract({ left: roi.x, top: roi.y, width: roi.width, height: roi.height });
  // .greyscale(): a 1-channel raw input would otherwise come back as 3-channel sRGB
  const { data, info } = await img
    .resize(spec.width, spec.height, { fit: 'fill', kernel: spec.resizeKernel })
    .greyscale()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: onlyFirstChannel(data, info.channels) };
}

/**
 * A source frame at the model size: image and phantom frames are already; an ffmpeg frame (the ROI
 * as captured) is resized here. sharp's resize to the same size is the identity, so skipping it
 * changes no pixel.
 */
export async function toModelSize(frame: GreyFrame, spec: ResizeSpec): Promise<GreyFrame> {
  if (frame.width === spec.width && frame.height === spec.height) return frame;
  return resizeGrey(frame, spec);
}

/**
 * A label mask (file, encoded buffer, or raw 1-byte-per-pixel with `raw`) resized with nearest
 * neighbour to width x height and thresholded at half scale: 1 = nodule, 0 = background.
 */
export async function decodeMask(
  input: Buffer | string | Uint8Array,
  width: number,
  height: number,
  raw?: { width: number; height: number },
): Promise<Uint8Array> {
  const img = raw ? sharp(input, { raw: { width: raw.width, height: raw.height, channels: 1 } }) : sharp(input);
  const m = await img
    .removeAlpha()
    .greyscale()
    .resize(width, height, { fit: 'fill', kernel: 'nearest' })
    .raw()
    .toBuffer();
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) out[i] = (m[i] as number) > 127 ? 1 : 0;
  return out;
}
