/**
 * How far a per-frame mean can be trusted when neighbouring frames are alike: the frames are cut into
 * consecutive blocks, and the spread of the block means gives the standard error. A plain standard error over
 * frames would be too small, because the phantom's drift and gain wander change slowly (seed 3's 40-frame
 * blocks ranged 0.57-0.65 around a 400-frame mean of 0.61).
 */
export interface BlockSpread {
  mean: number;
  /** the mean of each whole block, in order (a last partial block is left out) */
  blocks: number[];
  /** standard deviation of the block means over the square root of their number; NaN under two blocks */
  standardError: number;
}

export function blockSpread(values: readonly number[], blockSize: number): BlockSpread {
  if (!(Number.isInteger(blockSize) && blockSize > 0)) throw new Error('blockSize: a positive whole number');
  if (values.length === 0) throw new Error('no values');
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const blocks: number[] = [];
  for (let i = 0; i + blockSize <= values.length; i += blockSize) {
    blocks.push(values.slice(i, i + blockSize).reduce((a, b) => a + b, 0) / blockSize);
  }
  const k = blocks.length;
  if (k < 2) return { mean, blocks, standardError: Number.NaN };
  const bm = blocks.reduce((a, b) => a + b, 0) / k;
  const variance = blocks.reduce((a, b) => a + (b - bm) ** 2, 0) / (k - 1);
  return { mean, blocks, standardError: Math.sqrt(variance / k) };
}
