import { describe, expect, it } from 'vitest';
import { parseIntList } from '../src/util/int-list.js';

describe('parseIntList (seed lists on the command line)', () => {
  it('reads numbers and ranges, and names a bad part', () => {
    expect(parseIntList('1-3,7')).toEqual([1, 2, 3, 7]);
    expect(parseIntList(' 5 ')).toEqual([5]);
    expect(() => parseIntList('1-x', '--seeds')).toThrow('--seeds: "1-x" is not a number or a range like 1-12');
    expect(() => parseIntList('4-2', '--seeds')).toThrow('runs backwards');
    expect(() => parseIntList('')).toThrow();
  });
});
