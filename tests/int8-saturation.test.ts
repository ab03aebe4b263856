import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { int8SaturationRisk, readCpuFlags } from '../src/inference/int8-saturation.js';
import type { ModelCard } from '../src/inference/model-card.js';
import { tempDir } from './helpers/fixtures.js';

const card = (reduceRange: boolean | undefined): ModelCard =>
  ({ precision: 'int8', quantization: reduceRange === undefined ? undefined : { reduceRange } }) as ModelCard;

describe('INT8 saturation warning (x86-64 without VNNI, 8-bit weights)', () => {
  it('warns only for an 8-bit-weight INT8 model on an x86-64 CPU known to lack VNNI', async () => {
    const avx2 = new Set(['sse4_2', 'avx2', 'fma']);
    let reads = 0;
    const flags = (f: ReadonlySet<string> | null) => async () => {
      reads++;
      return f;
    };
    expect(await int8SaturationRisk('x64', card(false), flags(avx2))).toMatch(/no VNNI.*reduceRange false/);
    expect(await int8SaturationRisk('x64', card(false), flags(new Set([...avx2, 'avx512_vnni'])))).toBeNull();
    expect(await int8SaturationRisk('x64', card(false), flags(new Set([...avx2, 'avx_vnni'])))).toBeNull();
    expect(await int8SaturationRisk('x64', card(false), flags(null))).toBeNull(); // flags unknown: no guess
    reads = 0;
    expect(await int8SaturationRisk('x64', card(true), flags(avx2))).toBeNull(); // 7-bit weights: no risk
    expect(await int8SaturationRisk('x64', card(undefined), flags(avx2))).toBeNull(); // older cards say nothing
    expect(await int8SaturationRisk('arm64', card(false), flags(new Set(['asimd'])))).toBeNull(); // the box
    expect(await int8SaturationRisk('x64', { ...card(false), precision: 'fp32' }, flags(avx2))).toBeNull();
    expect(reads).toBe(0); // and without reading the CPU's flags
  });

  it('reads the flags of x86 (flags) and ARM (Features) cpuinfo, and null where there is none', async () => {
    const dir = await tempDir('cpuinfo');
    await writeFile(join(dir, 'x86'), 'processor\t: 0\nflags\t\t: fpu sse avx2 avx512_vnni\nbugs\t: x\n');
    await writeFile(join(dir, 'arm'), 'processor\t: 0\nFeatures\t: fp asimd asimddp\n');
    expect((await readCpuFlags(join(dir, 'x86')))?.has('avx512_vnni')).toBe(true);
    expect((await readCpuFlags(join(dir, 'arm')))?.has('asimddp')).toBe(true);
    expect(await readCpuFlags(join(dir, 'missing'))).toBeNull();
  });
});
