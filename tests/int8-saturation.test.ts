import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { int8SaturationRisk, readCpuFlags } from '../src/inference/int8-saturation.js';
import type { ModelCard } from '../src/inference/model-card.js';
import { tempDir } from './helpers/fixtures.js';

const card = (reduceRange: boolean | undefined): ModelCard =>
  ({ precision: 'int8', quantization: reduceRange === undefined ? undefined : { reduceRange } }) as ModelCard;

describe('INT8 saturation warning (x86-64 without VNNI, 8-bit weights)', () => {
  it('warns only for an 8-bit-weight INT8 model on an x86-64 CPU known to lack VNNI', () => {
    const avx2 = new Set(['sse4_2', 'avx2', 'fma']);
    expect(int8SaturationRisk('x64', avx2, card(false))).toMatch(/no VNNI.*reduceRange false/);
    expect(int8SaturationRisk('x64', new Set([...avx2, 'avx512_vnni']), card(false))).toBeNull();
    expect(int8SaturationRisk('x64', new Set([...avx2, 'avx_vnni']), card(false))).toBeNull();
    expect(int8SaturationRisk('x64', avx2, card(true))).toBeNull(); // 7-bit weights: no risk
    expect(int8SaturationRisk('x64', avx2, card(undefined))).toBeNull(); // older cards say nothing
    expect(int8SaturationRisk('arm64', new Set(['asimd']), card(false))).toBeNull(); // the box
    expect(int8SaturationRisk('x64', null, card(false))).toBeNull(); // flags unknown: no guess
    expect(int8SaturationRisk('x64', avx2, { ...card(false), precision: 'fp32' })).toBeNull();
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
