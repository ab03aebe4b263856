/** The phantom benchmark's spread: block means and their spread, as pure logic. */
import { describe, expect, it } from 'vitest';
import { blockSpread } from '../bench/block-spread.js';

describe('block spread', () => {
  it('takes the standard error from the block means, not from single frames', () => {
    // two slow levels: frames inside a block agree, so a per-frame standard error would be tiny
    const values = [...Array(40).fill(0.5), ...Array(40).fill(0.7), ...Array(40).fill(0.5), ...Array(40).fill(0.7)];
    const s = blockSpread(values, 40);
    expect(s.mean).toBeCloseTo(0.6, 12);
    expect(s.blocks).toEqual([0.5, 0.7, 0.5, 0.7].map((v) => expect.closeTo(v, 12)));
    // block sd = sqrt(4 * 0.01 / 3); over sqrt(4)
    expect(s.blockError).toBeCloseTo(Math.sqrt(0.04 / 3) / 2, 12);
  });

  it('leaves a partial last block out of the blocks but not out of the mean', () => {
    const s = blockSpread([1, 1, 0, 0, 1], 2);
    expect(s.blocks).toEqual([1, 0]);
    expect(s.mean).toBeCloseTo(0.6, 12);
  });

  it('has no standard error from one block, and refuses nonsense', () => {
    expect(Number.isNaN(blockSpread([0.2, 0.4], 2).blockError)).toBe(true);
    expect(() => blockSpread([], 2)).toThrow('no values');
    expect(() => blockSpread([1], 0)).toThrow('blockSize');
  });
});
