/** System figures for telemetry, read with systeminformation; each one null when unavailable. */
import si from 'systeminformation';
import { resolve } from 'node:path';

export interface SystemFigures {
  loadPercent: number | null;
  temperatureC: number | null;
  systemUsedBytes: number | null;
  systemTotalBytes: number | null;
  disk: { mount: string; usedBytes: number; sizeBytes: number } | null;
}

/** A reading, or null when it fails or takes longer than `ms` (df hangs on a stuck network mount). */
export async function orNullAfter<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((r) => {
    timer = setTimeout(() => r(null), ms);
  });
  try {
    return await Promise.race([p, late]);
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** The figures, each null when it could not be read within `timeoutMs`. */
export async function readSystem(stateDir: string, timeoutMs = 5000): Promise<SystemFigures> {
  const [load, temp, mem, fs] = await Promise.all([
    orNullAfter(si.currentLoad(), timeoutMs),
    orNullAfter(si.cpuTemperature(), timeoutMs),
    orNullAfter(si.mem(), timeoutMs),
    orNullAfter(si.fsSize(), timeoutMs),
  ]);
  const abs = resolve(stateDir);
  const disk = (fs ?? [])
    .filter((d) => abs === d.mount || abs.startsWith(d.mount.endsWith('/') ? d.mount : `${d.mount}/`))
    .sort((a, b) => b.mount.length - a.mount.length)[0];
  const t = temp?.main;
  return {
    loadPercent: load ? Math.round(load.currentLoad * 10) / 10 : null,
    temperatureC: typeof t === 'number' && Number.isFinite(t) ? t : null,
    systemUsedBytes: mem ? mem.active : null,
    systemTotalBytes: mem ? mem.total : null,
    disk: disk ? { mount: disk.mount, usedBytes: disk.used, sizeBytes: disk.size } : null,
  };
}

/** Only CPU load and temperature: cheap enough for the live view's 1 s charts. */
export async function readCpu(): Promise<{ loadPercent: number | null; temperatureC: number | null }> {
  const [load, temp] = await Promise.all([orNullAfter(si.currentLoad(), 5000), orNullAfter(si.cpuTemperature(), 5000)]);
  const t = temp?.main;
  return {
    loadPercent: load ? Math.round(load.currentLoad * 10) / 10 : null,
    temperatureC: typeof t === 'number' && Number.isFinite(t) ? t : null,
  };
}
