/**
 * onnxruntime documents that on x86-64 CPUs with AVX2/AVX-512 but without VNNI its u8 x s8 kernels can
 * saturate 16-bit intermediate sums; a model quantized with 7-bit weights (`reduce_range`) avoids it.
 * The box is ARM, where this does not arise, so a file with full 8-bit weights may ship (the card says which);
 * a development or bench machine without VNNI should then know that its masks may differ from the box's.
 */
import { readFile } from 'node:fs/promises';
import type { ModelCard } from './model-card.js';

const VNNI_FLAGS = ['avx512_vnni', 'avx_vnni'];

/**
 * Why this machine may compute the card's INT8 model with saturation, or null when it does not. The CPU's
 * flags are read only for an 8-bit-weight INT8 model on x86-64 (never on the box).
 */
export async function int8SaturationRisk(
  arch: string,
  card: ModelCard,
  readFlags: () => Promise<ReadonlySet<string> | null> = readCpuFlags,
): Promise<string | null> {
  if (arch !== 'x64' || card.precision !== 'int8' || card.quantization?.reduceRange !== false) return null;
  const cpuFlags = await readFlags();
  if (cpuFlags === null) return null; // flags unknown (not Linux): say nothing rather than guess
  if (VNNI_FLAGS.some((f) => cpuFlags.has(f))) return null;
  return (
    'this x86-64 CPU has no VNNI and the model has 8-bit weights (card quantization.reduceRange false): ' +
    "onnxruntime's u8 x s8 kernels can saturate here, so masks may differ from the box's; for figures on " +
    'this machine, quantize with reduce_range (training/thyroid_seg/ship.py without --no-reduce-range)'
  );
}

/** The CPU's feature flags from /proc/cpuinfo, or null where there is none. */
export async function readCpuFlags(path = '/proc/cpuinfo'): Promise<Set<string> | null> {
  try {
    const line = (await readFile(path, 'utf8')).split('\n').find((l) => /^(flags|Features)\s*:/.test(l));
    return line
      ? new Set(
          line
            .slice(line.indexOf(':') + 1)
            .trim()
            .split(/\s+/),
        )
      : new Set();
  } catch {
    return null;
  }
}
