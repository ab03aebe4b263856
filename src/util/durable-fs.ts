/** Crash-safe file writes: what a kill -9 or power cut leaves is the old file or the new one, never half. */
import { open, rename } from 'node:fs/promises';

/** Writes and fsyncs `path` in place (no rename: for files nothing trusts until a later atomic step). */
export async function writeSynced(path: string, data: string | Buffer): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Temp file, fsync, rename over `path`. Follow with syncDir(dirname) to make the rename durable. */
export async function writeAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.tmp`;
  await writeSynced(tmp, data);
  await rename(tmp, path);
}

/** fsync of a directory: makes renames and unlinks in it durable. */
export async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } catch {
    /* some filesystems refuse fsync on directories */
  } finally {
    await d.close();
  }
}
