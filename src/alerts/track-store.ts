/**
 * What must survive a crash about alerts: the next track id (ids never repeat across restarts) and
 * the tracks announced as open (each gets nodule_cleared, reason `restart`, at the next start).
 * One small JSON file, written atomically and fsync'd before the alert it covers is stored.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Type, type Static } from '@sinclair/typebox';
import { syncDir, writeAtomic } from '../util/durable-fs.js';
import { compileSchema } from '../util/schema.js';
import { AlertPayload } from './payload.js';

const OpenRecord = Type.Object({
  /** the nodule_detected message (with its messageId: re-stored at start-up if it may not have been) */
  detected: AlertPayload,
  /** true once the nodule_detected message is durably in the outbox */
  announced: Type.Boolean(),
});
export type OpenRecord = Static<typeof OpenRecord>;

const StoreFile = Type.Object({
  nextTrackId: Type.Integer({ minimum: 1 }),
  open: Type.Array(OpenRecord),
});
type StoreFile = Static<typeof StoreFile>;
const valid = compileSchema(StoreFile);

export class TrackStore {
  private constructor(
    private readonly path: string,
    public nextTrackId: number,
    readonly open: Map<number, OpenRecord>,
  ) {}

  /** Reads the file; a missing one is a first start. A corrupt one is an error naming the file. */
  static async load(path: string): Promise<TrackStore> {
    await mkdir(dirname(path), { recursive: true });
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new TrackStore(path, 1, new Map());
      throw err;
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new Error(`${path}: not JSON (${(err as Error).message})`);
    }
    if (!valid(data)) throw new Error(`${path}: not a track store (${JSON.stringify(valid.errors).slice(0, 200)})`);
    const d = data as StoreFile;
    return new TrackStore(path, d.nextTrackId, new Map(d.open.map((r) => [r.detected.trackId, r])));
  }

  /** A new public track id; durable with the next save(). */
  takeId(): number {
    return this.nextTrackId++;
  }

  async save(): Promise<void> {
    const body: StoreFile = { nextTrackId: this.nextTrackId, open: [...this.open.values()] };
    await writeAtomic(this.path, JSON.stringify(body));
    await syncDir(dirname(this.path));
  }
}
