/** The capture section of the config: which source, the imaging area, and each source's settings. */
import { Type, type Static } from '@sinclair/typebox';
import { RUNTIME as RT, section as Obj } from '../util/schema.js';

export const RectSchema = Type.Object(
  {
    x: Type.Integer({ minimum: 0 }),
    y: Type.Integer({ minimum: 0 }),
    width: Type.Integer({ minimum: 16 }),
    height: Type.Integer({ minimum: 16 }),
  },
  { additionalProperties: false },
);

export const CaptureConfigSchema = Obj(
  {
    source: Type.Union([Type.Literal('phantom'), Type.Literal('v4l2'), Type.Literal('file'), Type.Literal('images')], {
      default: 'phantom',
      description: 'Which frame source feeds the pipeline.',
    }),
    roi: Type.Union([RectSchema, Type.Null()], {
      ...RT,
      default: null,
      description:
        'Imaging area in capture pixels (x, y, width, height). Everything outside (the header with patient ' +
        'data) is cropped away before any processing. Required for v4l2 and file; `thyroid-edge calibrate` ' +
        'proposes one. null for phantom (uses its own) and images (whole image).',
    }),
    ffmpegPath: Type.String({ default: 'ffmpeg', description: 'ffmpeg binary.' }),
    v4l2: Obj(
      {
        device: Type.String({ default: '/dev/video0', description: 'V4L2 device of the capture dongle.' }),
        inputFormat: Type.Union([Type.Literal('mjpeg'), Type.Literal('yuyv422')], { default: 'mjpeg' }),
        width: Type.Integer({ minimum: 16, maximum: 7680, default: 1920, description: 'capture width' }),
        height: Type.Integer({ minimum: 16, maximum: 4320, default: 1080, description: 'capture height' }),
        fps: Type.Number({ exclusiveMinimum: 0, maximum: 240, default: 30, ...RT }),
      },
      'V4L2 capture dongle (source: v4l2).',
    ),
    file: Obj(
      {
        path: Type.String({ default: '', description: 'Any video file ffmpeg reads.' }),
        width: Type.Integer({ minimum: 16, default: 1920, description: 'video width (for ROI checks)' }),
        height: Type.Integer({ minimum: 16, default: 1080, description: 'video height' }),
        realtime: Type.Boolean({
          default: true,
          description: "true: at the file's own rate; false: as fast as possible.",
          ...RT,
        }),
        loop: Type.Boolean({ default: true, ...RT }),
      },
      'Video file (source: file).',
    ),
    images: Obj(
      {
        dir: Type.String({ default: '', description: 'Folder of PNG/JPEG frames, played in name order.' }),
        fps: Type.Number({ exclusiveMinimum: 0, maximum: 240, default: 5, ...RT }),
        loop: Type.Boolean({ default: true, ...RT }),
      },
      'Image folder (source: images).',
    ),
    phantom: Obj(
      {
        seed: Type.Integer({ default: 1 }),
        fps: Type.Number({ minimum: 0, maximum: 240, default: 15, description: '0 = as fast as consumed.' }),
        nodules: Type.Integer({ minimum: 0, maximum: 5, default: 1 }),
        cycleFrames: Type.Integer({
          minimum: 0,
          default: 150,
          description: 'frames per appear/disappear cycle of each nodule; 0 = always visible',
        }),
        visibleFraction: Type.Number({
          exclusiveMinimum: 0,
          maximum: 1,
          default: 0.4,
          description: 'fraction of each cycle a nodule is in view; a scan is mostly frames without one',
        }),
        liftWhenAbsent: Type.Boolean({
          default: true,
          description:
            'lift the probe (dark noise in the imaging area) while no nodule is in view, as between two views ' +
            'of a scan. false keeps the probe on the nodule-free gland, which the shipped model marks as a ' +
            'nodule (README, "Phantom"): one long track instead of an alert per appearance',
        }),
      },
      'Synthetic B-mode phantom (source: phantom).',
      RT,
    ),
  },
  'Where frames come from.',
);

export type CaptureConfig = Static<typeof CaptureConfigSchema>;
