/**
 * `thyroid-edge infer` on a mixed batch (issue 14, D7): every file gets its own result or its own
 * error line naming it, the batch goes on, the summary counts failures, the exit code says so.
 */
import { copyFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { phantomPngs } from './helpers/bundles.js';
import { tempDir } from './helpers/fixtures.js';
import { runCommand } from './helpers/run.js';

function crc32(buf: Buffer): number {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** A well-formed PNG header declaring width x height grey pixels (the pixel data is a stub: it is never decoded). */
function hugePngHeader(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(Buffer.alloc(1024))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('infer on a mixed batch', () => {
  it('good, empty, text, over-large files: two results, three error lines naming files, summary, exit 1', async () => {
    const dir = await tempDir('te-infer-in-');
    const out = await tempDir('te-infer-out-');
    const [good] = await phantomPngs(1);
    await copyFile(good!, join(dir, 'a-good.png'));
    await writeFile(join(dir, 'b-empty.png'), Buffer.alloc(0));
    await writeFile(join(dir, 'c-text.png'), 'this is a note, not an image\n');
    await writeFile(join(dir, 'd-huge.png'), hugePngHeader(30000, 30000));
    await copyFile(good!, join(dir, 'e-good.png'));
    const files = ['a-good.png', 'b-empty.png', 'c-text.png', 'd-huge.png', 'e-good.png'].map((f) => join(dir, f));
    const r = await runCommand('node', ['dist/src/cli.js', 'infer', ...files, '--out', out, '--quiet'], {
      timeoutMs: 120_000,
    });
    expect(r.status, r.stderr).toBe(1);
    const summary = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(summary).toMatchObject({ images: 5, ok: 2, failed: 3 });
    expect(summary.failures.map((f: { input: string }) => f.input)).toEqual([files[1], files[2], files[3]]);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('thyroid-edge: infer: '));
    expect(errors).toHaveLength(3);
    expect(errors[0]).toContain(`${files[1]}: empty file`);
    expect(errors[1]).toContain(files[2]);
    expect(errors[2]).toMatch(
      new RegExp(
        `${files[3]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: image is 30000x30000 \\(900000000 pixels\\), ` +
          'over the limit',
      ),
    );
    expect((await readdir(out)).sort()).toEqual(['a-good.json', 'a-good.mask.png', 'e-good.json', 'e-good.mask.png']);
  }, 150_000);

  it('a batch with no failure still exits 0 with failed: 0', async () => {
    const [good] = await phantomPngs(1);
    const r = await runCommand('node', ['dist/src/cli.js', 'infer', good!, '--quiet'], { timeoutMs: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout.trim().split('\n').pop()!)).toMatchObject({ images: 1, ok: 1, failed: 0, failures: [] });
  }, 150_000);
});
