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

async function safe<T>(p: Promise<T>): Promise<T | null> {
  try {
    return await p;
  } catch {
    return null;
  }
}

export async function readSystem(stateDir: string): Promise<SystemFigures> {
  const [load, temp, mem, fs] = await Promise.all([
    safe(si.currentLoad()),
    safe(si.cpuTemperature()),
    safe(si.mem()),
    safe(si.fsSize()),
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
  const [load, temp] = await Promise.all([safe(si.currentLoad()), safe(si.cpuTemperature())]);
  const t = temp?.main;
  return {
    loadPercent: load ? Math.round(load.currentLoad * 10) / 10 : null,
    temperatureC: typeof t === 'number' && Number.isFinite(t) ? t : null,
  };
}
