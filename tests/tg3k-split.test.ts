import { describe, expect, it } from 'vitest';
import { tg3kSplit } from '../src/tools/tg3k-split.js';

const HEAD =
  'id,group,seg_est,seg_edge,src_split,w,h,mode,mask_frac,mask_components,mask_px_removed,md5,aug_flag,excluded';
const row = (id: string, block: number, edge = 0, excluded = '') =>
  `${id},,${block},${edge},train,256,256,L,0.1,1,0,md5,,${excluded}`;

describe('tg3kSplit', () => {
  it('holds out whole video blocks for val and leaves out boundary and excluded frames', () => {
    const csv = [
      HEAD,
      row('0000', 0),
      row('0001', 0),
      row('0002', 0, 1), // near a block boundary: its block is uncertain
      row('0003', 3),
      row('0004', 3),
      row('0005', 4, 0, 'baked-in noise augmentation'),
      row('0006', 11),
    ].join('\n');
    const s = tg3kSplit(csv, [3, 11]);
    expect(s.train).toEqual(['0000', '0001']);
    expect(s.val).toEqual(['0003', '0004', '0006']);
    expect(s.test).toEqual([]);
    expect(s.valBlocks).toEqual([3, 11]);
  });

  it('names a missing column', () => {
    expect(() => tg3kSplit('id,seg_est,excluded\n0000,1,')).toThrow(/no column "seg_edge"/);
  });
});
