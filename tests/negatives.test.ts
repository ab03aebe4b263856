import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../src/capture/phantom.js';
import { decodeToModelGrey, enhance } from '../src/inference/preprocess.js';
import {
  dilate,
  imagingArea,
  noduleCrop,
  probeLifted,
  respeckled,
  tissueCrop,
  viewCrop,
} from '../src/tools/negatives.js';
import { prepareDataset } from '../src/tools/prepare-dataset.js';
import { SMALL_SPEC, tempDir } from './helpers/fixtures.js';

const W = 200;
const H = 140;
/** A screen: black margins, a speckled imaging area at x 30..169, y 20..119, a dark nodule at (60, 60) r 15. */
function screen(seed = 1): { grey: Uint8Array; mask: Uint8Array } {
  const rnd = mulberry32(seed);
  const grey = new Uint8Array(W * H);
  const mask = new Uint8Array(W * H);
  for (let y = 20; y < 120; y++) {
    for (let x = 30; x < 170; x++) {
      const inNodule = (x - 60) ** 2 + (y - 60) ** 2 <= 15 ** 2;
      mask[y * W + x] = inNodule ? 1 : 0;
      grey[y * W + x] = Math.round((inNodule ? 40 : 110) + rnd() * 60);
    }
  }
  for (let x = 2; x < 20; x++) grey[5 * W + x] = 255; // an overlay text line in the margin
  return { grey, mask };
}

function countIn(a: Uint8Array, r: { x: number; y: number; width: number; height: number }): number {
  let n = 0;
  for (let y = r.y; y < r.y + r.height; y++) for (let x = r.x; x < r.x + r.width; x++) n += a[y * W + x] as number;
  return n;
}

describe('frames without a nodule (src/tools/negatives.ts)', () => {
  it('finds the imaging area of a screen', () => {
    const { grey } = screen();
    const r = imagingArea(grey, W, H);
    expect(Math.abs(r.x - 30)).toBeLessThanOrEqual(4);
    expect(Math.abs(r.y - 20)).toBeLessThanOrEqual(4);
    expect(Math.abs(r.x + r.width - 170)).toBeLessThanOrEqual(4);
    expect(Math.abs(r.y + r.height - 120)).toBeLessThanOrEqual(4);
  });

  it('grows a mask by the margin', () => {
    const m = new Uint8Array(25);
    m[12] = 1; // centre of 5x5
    const d = dilate(m, 5, 5, 1);
    expect(Array.from(d).reduce((s, v) => s + v, 0)).toBe(9);
    expect(d[0]).toBe(0);
  });

  it('tissue crops stay inside the imaging area and clear of the nodule by the margin', () => {
    const { grey, mask } = screen();
    const grown = dilate(mask, W, H, 12);
    const rnd = mulberry32(7);
    let found = 0;
    for (let i = 0; i < 20; i++) {
      const r = tissueCrop(grey, mask, W, H, 1, rnd, { margin: 12, minScale: 0.25, maxScale: 0.4 });
      if (!r) continue;
      found++;
      expect(countIn(grown, r)).toBe(0);
      expect(r.x).toBeGreaterThanOrEqual(26);
      expect(r.x + r.width).toBeLessThanOrEqual(174);
    }
    expect(found).toBeGreaterThan(10);
    // a nodule filling the area leaves no room: no crop rather than a wrong one
    const full = new Uint8Array(W * H).fill(1);
    expect(tissueCrop(grey, full, W, H, 1, mulberry32(1))).toBeNull();
  });

  it('nodule crops hold the whole nodule', () => {
    const { grey, mask } = screen();
    const r = noduleCrop(mask, grey, W, H, mulberry32(3))!;
    expect(countIn(mask, r)).toBe(mask.reduce((s, v) => s + v, 0));
  });

  it('view crops are zoomed-in views of the imaging area holding part or all of the nodule', () => {
    const { grey, mask } = screen();
    const total = mask.reduce((s, v) => s + v, 0);
    const shares: number[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const r = viewCrop(mask, grey, W, H, mulberry32(seed))!;
      expect(r).not.toBeNull();
      expect(r.x).toBeGreaterThanOrEqual(30);
      expect(r.y).toBeGreaterThanOrEqual(20);
      expect(r.x + r.width).toBeLessThanOrEqual(170);
      expect(r.y + r.height).toBeLessThanOrEqual(120);
      // the imaging area's aspect at 45-80 % of its size
      expect(r.width / 140).toBeGreaterThanOrEqual(0.44);
      expect(r.width / 140).toBeLessThanOrEqual(0.81);
      expect(Math.abs(r.width / r.height - 1.4)).toBeLessThan(0.05);
      shares.push(countIn(mask, r) / total);
    }
    expect(Math.min(...shares)).toBeGreaterThanOrEqual(0.1);
    // some cut the nodule at their edge, some hold it whole
    expect(shares.some((v) => v < 0.9)).toBe(true);
    expect(shares.some((v) => v === 1)).toBe(true);
    expect(viewCrop(new Uint8Array(W * H), grey, W, H, mulberry32(1))).toBeNull();
  });

  it('a probe-lifted screen keeps its margins and overlays, and darkens the imaging area', () => {
    const { grey } = screen();
    for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
      const lifted = probeLifted(grey, W, H, seed);
      expect(lifted[5 * W + 10]).toBe(255); // overlay kept
      expect(lifted[0]).toBe(0);
      let sum = 0;
      for (let y = 20; y < 120; y++) for (let x = 30; x < 170; x++) sum += lifted[y * W + x] as number;
      expect(sum / (100 * 140)).toBeLessThan(110); // the tissue's mean is 140: no tissue left
    }
    // deterministic for a seed
    expect(Buffer.from(probeLifted(grey, W, H, 9)).equals(Buffer.from(probeLifted(grey, W, H, 9)))).toBe(true);
  });

  it('a re-speckled screen keeps its margins and overlays and changes the imaging area, deterministically', () => {
    const { grey } = screen();
    for (const seed of [1, 2, 3, 4]) {
      const s = respeckled(grey, W, H, seed);
      expect(s[5 * W + 10]).toBe(255);
      expect(s[0]).toBe(0);
      let changed = 0;
      let sum = 0;
      for (let y = 20; y < 120; y++) {
        for (let x = 30; x < 170; x++) {
          if (s[y * W + x] !== grey[y * W + x]) changed++;
          sum += s[y * W + x] as number;
        }
      }
      expect(changed / (100 * 140)).toBeGreaterThan(0.5);
      // still tissue: the mean stays within the gain range (0.75-1.3) of the original 134 or so
      expect(sum / (100 * 140)).toBeGreaterThan(80);
      expect(sum / (100 * 140)).toBeLessThan(190);
    }
    expect(Buffer.from(respeckled(grey, W, H, 9)).equals(Buffer.from(respeckled(grey, W, H, 9)))).toBe(true);
  });

  it('prepare-dataset --negatives: made frames in their source split, empty masks, daemon preprocessing', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'images'));
    await mkdir(join(dir, 'masks'));
    const ids = { train: ['a', 'b'], val: ['c'], test: ['d'] };
    for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) {
      const { grey, mask } = screen(i + 1);
      await sharp(grey, { raw: { width: W, height: H, channels: 1 } })
        .png()
        .toFile(join(dir, 'images', `${id}.png`));
      await sharp(
        mask.map((v) => v * 255),
        { raw: { width: W, height: H, channels: 1 } },
      )
        .png()
        .toFile(join(dir, 'masks', `${id}.png`));
    }
    await writeFile(join(dir, 'split.json'), JSON.stringify(ids));
    const spec = { ...SMALL_SPEC, clahe: { ...SMALL_SPEC.clahe, method: 'tiles' as const } };
    await prepareDataset({ data: dir, spec, out: join(dir, 'plain'), quiet: true });
    await prepareDataset({
      data: dir,
      spec,
      out: join(dir, 'neg'),
      quiet: true,
      negatives: { tissue: 2, notissue: 1, noduleCrops: 1, seed: 0 },
    });
    await prepareDataset({
      data: dir,
      spec,
      out: join(dir, 'speckle'),
      quiet: true,
      negatives: { tissue: 2, notissue: 1, noduleCrops: 1, seed: 0, roi: 1, speckle: 1 },
    });
    const meta = JSON.parse(await readFile(join(dir, 'neg', 'meta.json'), 'utf8'));
    const rows = meta.rows as {
      id: string;
      split: string;
      kind?: string;
      source?: string;
      rect?: { x: number; y: number; width: number; height: number };
    }[];
    const frame = spec.width * spec.height;
    const images = await readFile(join(dir, 'neg', 'images.u8'));
    const masks = await readFile(join(dir, 'neg', 'masks.u8'));
    expect(images.length).toBe(rows.length * frame);
    // the dataset's own frames come first, byte-identical to a run without negatives
    const plain = await readFile(join(dir, 'plain', 'images.u8'));
    expect(images.subarray(0, plain.length).equals(plain)).toBe(true);
    const made = rows.slice(4);
    expect(made.filter((r) => r.kind === 'notissue')).toHaveLength(4);
    expect(made.filter((r) => r.kind === 'tissue').length).toBeGreaterThan(0);
    // nodule crops for train only; every made frame in its source frame's split
    expect(made.filter((r) => r.kind === 'nodulecrop').map((r) => r.split)).toEqual(['train', 'train']);
    const splitOf = Object.fromEntries(Object.entries(ids).flatMap(([s, l]) => l.map((id) => [id, s])));
    for (const [i, r] of rows.entries()) {
      if (!r.kind) continue;
      expect(r.split).toBe(splitOf[r.source!]);
      const m = masks.subarray(i * frame, (i + 1) * frame);
      const positive = m.some((v) => v === 1);
      expect(positive).toBe(r.kind === 'nodulecrop');
    }
    // a tissue crop is the daemon's own ROI path on the source image
    const i = rows.findIndex((r) => r.kind === 'tissue');
    const r = rows[i]!;
    const bytes = await readFile(join(dir, 'images', `${r.source}.png`));
    const direct = await enhance(await decodeToModelGrey(bytes, spec, r.rect), spec);
    expect(Buffer.from(direct.data).equals(images.subarray(i * frame, (i + 1) * frame))).toBe(true);

    // speckle=1: each train roi and tissue frame once more, re-speckled, same rect and mask; none for val/test
    const sm = JSON.parse(await readFile(join(dir, 'speckle', 'meta.json'), 'utf8'));
    const srows = sm.rows as { id: string; split: string; kind?: string; rect?: unknown; respeckled?: number }[];
    const smasks = await readFile(join(dir, 'speckle', 'masks.u8'));
    const simages = await readFile(join(dir, 'speckle', 'images.u8'));
    const copies = srows.filter((r) => r.respeckled);
    const views = srows.filter(
      (r) => !r.respeckled && r.split === 'train' && (r.kind === 'roi' || r.kind === 'tissue'),
    );
    expect(views.length).toBeGreaterThan(0);
    expect(copies.map((r) => r.id).sort()).toEqual(views.map((r) => `${r.id}~speckle1`).sort());
    for (const c of copies) {
      const ci = srows.indexOf(c);
      const oi = srows.findIndex((r) => `${r.id}~speckle1` === c.id);
      expect(c.rect).toEqual(srows[oi]!.rect);
      expect(smasks.subarray(ci * frame, (ci + 1) * frame).equals(smasks.subarray(oi * frame, (oi + 1) * frame))).toBe(
        true,
      );
      expect(
        simages.subarray(ci * frame, (ci + 1) * frame).equals(simages.subarray(oi * frame, (oi + 1) * frame)),
      ).toBe(false);
    }

    // viewcrops=2: train views holding the nodule (positive masks), re-speckled too; every other frame unchanged
    await prepareDataset({
      data: dir,
      spec,
      out: join(dir, 'view'),
      quiet: true,
      negatives: { tissue: 2, notissue: 1, noduleCrops: 1, seed: 0, roi: 1, speckle: 1, viewCrops: 2 },
    });
    const vm = JSON.parse(await readFile(join(dir, 'view', 'meta.json'), 'utf8'));
    const vrows = vm.rows as { id: string; split: string; kind?: string; respeckled?: number }[];
    const vimages = await readFile(join(dir, 'view', 'images.u8'));
    const vmasks = await readFile(join(dir, 'view', 'masks.u8'));
    const crops = vrows.filter((r) => r.kind === 'viewcrop' && !r.respeckled);
    expect(crops.length).toBeGreaterThan(0);
    expect(new Set(crops.map((r) => r.split))).toEqual(new Set(['train']));
    expect(vrows.filter((r) => r.kind === 'viewcrop' && r.respeckled).length).toBe(crops.length);
    for (const [vi, r] of vrows.entries()) {
      if (r.kind === 'viewcrop') expect(vmasks.subarray(vi * frame, (vi + 1) * frame).some((v) => v === 1)).toBe(true);
      else {
        const si = srows.findIndex((x) => x.id === r.id);
        expect(si).toBeGreaterThanOrEqual(0);
        expect(
          vimages.subarray(vi * frame, (vi + 1) * frame).equals(simages.subarray(si * frame, (si + 1) * frame)),
        ).toBe(true);
      }
    }
    expect(vrows.length - crops.length * 2).toBe(srows.length);
  });
});
