/**
 * The model card: written by training/ (thyroid_seg/ship.py), read here. Preprocessing parameters
 * and the decision threshold live in the card and nowhere else.
 */
import { Type, type Static } from '@sinclair/typebox';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { compileSchema, formatErrors } from '../util/schema.js';

const TensorSpec = Type.Object({
  name: Type.String({ minLength: 1 }),
  dtype: Type.Literal('float32'),
  // null = dynamic dimension (batch)
  shape: Type.Array(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()]), { minItems: 4, maxItems: 4 }),
});

export const PreprocessingSchema = Type.Object(
  {
    width: Type.Integer({ minimum: 16, maximum: 4096, description: 'model input width in px' }),
    height: Type.Integer({ minimum: 16, maximum: 4096, description: 'model input height in px' }),
    resizeKernel: Type.Union([Type.Literal('linear'), Type.Literal('cubic'), Type.Literal('lanczos3')]),
    gaussianSigma: Type.Number({ minimum: 0.3, maximum: 10, description: 'sharp blur sigma, applied before CLAHE' }),
    clahe: Type.Object({
      method: Type.Optional(
        Type.Union([Type.Literal('local'), Type.Literal('tiles')], {
          description:
            "local (default): libvips' per-pixel window histogram (sharp .clahe), window tileWidth x tileHeight, " +
            'maxSlope in counts per bin; ' +
            'tiles: tile-interpolated CLAHE and a binomial blur in TypeScript (enhance-fast.ts), ~10x faster, ' +
            'maxSlope as a multiple of the mean bin count',
        }),
      ),
      tileWidth: Type.Integer({ minimum: 1 }),
      tileHeight: Type.Integer({ minimum: 1 }),
      maxSlope: Type.Integer({ minimum: 0, maximum: 100 }),
    }),
    mean: Type.Number({ description: 'subtracted after scaling grey levels to [0,1]' }),
    std: Type.Number({ exclusiveMinimum: 0 }),
  },
  { additionalProperties: false },
);
export type Preprocessing = Static<typeof PreprocessingSchema>;

export const ModelCardSchema = Type.Object(
  {
    schemaVersion: Type.Literal(1),
    name: Type.String({ minLength: 1 }),
    file: Type.String({ minLength: 1 }),
    sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    fileBytes: Type.Integer({ minimum: 1 }),
    precision: Type.Union([Type.Literal('int8'), Type.Literal('fp32')]),
    architecture: Type.Record(Type.String(), Type.Unknown()),
    input: TensorSpec,
    output: TensorSpec,
    preprocessing: PreprocessingSchema,
    threshold: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }),
    decision: Type.Optional(
      Type.Object(
        {
          threshold: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }),
          minAreaPx: Type.Integer({
            minimum: 0,
            description: 'a frame shows a nodule when a component has at least this many model pixels (chosen on val)',
          }),
        },
        { additionalProperties: true },
      ),
    ),
    quantization: Type.Optional(
      Type.Object(
        {
          reduceRange: Type.Optional(
            Type.Boolean({
              description:
                '7-bit weights: needed only on x86-64 CPUs without VNNI, where 8-bit ones can saturate ' +
                "onnxruntime's u8 x s8 sums (the daemon warns there when this is false)",
            }),
          ),
        },
        { additionalProperties: true },
      ),
    ),
    metrics: Type.Record(Type.String(), Type.Unknown()),
    dataset: Type.Record(Type.String(), Type.Unknown()),
    training: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: true },
);
export type ModelCard = Static<typeof ModelCardSchema>;

const validateCard = compileSchema(ModelCardSchema);

export class ModelCardError extends Error {}

export function parseModelCard(json: unknown, where: string): ModelCard {
  if (!validateCard(json)) {
    throw new ModelCardError(`model card ${where} is invalid: ${formatErrors(validateCard.errors)}`);
  }
  const card = json as ModelCard;
  const [, c, h, w] = card.input.shape;
  if (c !== 1 || h !== card.preprocessing.height || w !== card.preprocessing.width) {
    throw new ModelCardError(
      `model card ${where}: input shape ${JSON.stringify(card.input.shape)} disagrees with preprocessing ` +
        `${card.preprocessing.width}x${card.preprocessing.height} (expected [N,1,H,W])`,
    );
  }
  return card;
}

export async function loadModelCard(cardPath: string): Promise<ModelCard> {
  let raw: string;
  try {
    raw = await readFile(cardPath, 'utf8');
  } catch (err) {
    throw new ModelCardError(`cannot read model card ${cardPath}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new ModelCardError(`model card ${cardPath} is not JSON: ${(err as Error).message}`);
  }
  return parseModelCard(json, cardPath);
}

export async function sha256File(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}
