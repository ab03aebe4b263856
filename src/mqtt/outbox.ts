/**
 * Persistent on-disk outbox for messages that must not be lost: the durable topics of topic-table.ts
 * (alerts, update progress, command responses).
 * One file per message, named by a zero-padded sequence number, written atomically (temp file,
 * fsync, rename, fsync of the directory), so a kill -9 leaves either the whole message or none.
 * Delivered oldest first and removed only after the broker acknowledged it.
 *
 * Bounded by count and bytes. When full, the oldest command response is dropped first (a caller
 * can ask again), then the oldest update progress report, then the oldest alert; every drop is counted and logged.
 *
 * A message that cannot be delivered (refused by the broker, an invalid topic, failing every
 * attempt) is moved to a dead-letter folder beside the outbox with its reason: kept for an
 * operator, counted, and no longer in the way of the messages behind it. The folder keeps the newest
 * MAX_DEAD_LETTERS: it is on the state partition, which a stream of undeliverable messages must not fill.
 *
 * One message is at most MAX_MESSAGE_BYTES (and at most the outbox's byte limit): a larger one is refused
 * rather than stored, because no broker set up as deploy/mosquitto's (max_packet_size 1 MiB) would take it,
 * and making room for it would drop every message queued before it.
 */
import { mkdir, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { syncDir, writeAtomic, writeSynced } from '../util/durable-fs.js';
import { DURABLE_TOPICS, type DurableTopic } from './topic-table.js';

/** A message's topic key; it is part of the file name, so renaming a durable topic strands files already on disk. */
export type OutboxKind = DurableTopic;

export interface OutboxMessage {
  seq: number;
  kind: OutboxKind;
  topic: string;
  payload: string;
  /** extra MQTT 5 delivery, e.g. a request's response topic with its correlation data (base64) */
  alsoTo?: { topic: string; correlationData?: string };
  createdAt: number;
}

interface Entry {
  seq: number;
  kind: OutboxKind;
  bytes: number;
}

export interface OutboxLimits {
  maxMessages: number;
  maxBytes: number;
}

/** below the shipped broker's max_packet_size (1 MiB), with room for the topic and properties */
export const MAX_MESSAGE_BYTES = 768 * 1024;
/** dead letters kept: the oldest go first */
export const MAX_DEAD_LETTERS = 100;

export class OutboxMessageTooLarge extends Error {}

const NAME = new RegExp(`^(\\d{16})\\.(${DURABLE_TOPICS.join('|')})\\.json$`);

export class Outbox {
  private entries: Entry[] = [];
  private nextSeq = 1;
  private bytes = 0;
  dropped = 0;
  /** messages dead-lettered: at open, the letters in the folder (it keeps MAX_DEAD_LETTERS), then one per move */
  deadLettered = 0;
  private readonly waiters = new Set<() => void>();
  /** adds run one at a time so files land on disk in sequence order */
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private readonly limits: OutboxLimits,
  ) {}

  /** <outbox>-dead beside the outbox: never read by open(), so a dead letter cannot come back by itself */
  get deadDir(): string {
    return join(dirname(this.dir), `${basename(this.dir)}-dead`);
  }

  static async open(dir: string, limits: OutboxLimits): Promise<Outbox> {
    await mkdir(dir, { recursive: true });
    const o = new Outbox(dir, limits);
    const dead = (await readdir(o.deadDir).catch(() => [] as string[])).filter((n) => NAME.test(n)).sort();
    o.deadLettered = dead.length;
    const names = (await readdir(dir)).sort();
    for (const n of names) {
      const m = NAME.exec(n);
      if (!m) {
        // a temp file from a write interrupted by a crash: never renamed, so never acknowledged
        if (n.endsWith('.tmp')) await unlink(join(dir, n)).catch(() => undefined);
        continue;
      }
      const text = await readFile(join(dir, n), 'utf8').catch(() => null);
      if (text === null) continue;
      o.entries.push({ seq: Number(m[1]), kind: m[2] as OutboxKind, bytes: Buffer.byteLength(text) });
      o.bytes += Buffer.byteLength(text);
    }
    o.entries.sort((a, b) => a.seq - b.seq);
    // past the dead letters too: a new message must not take (and on dead-lettering, overwrite) an old one's name
    const lastDead = dead.length ? Number(NAME.exec(dead.at(-1) as string)?.[1]) : 0;
    o.nextSeq = Math.max(o.entries.at(-1)?.seq ?? 0, lastDead) + 1;
    return o;
  }

  get size(): number {
    return this.entries.length;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  private file(e: { seq: number; kind: OutboxKind }): string {
    return join(this.dir, `${String(e.seq).padStart(16, '0')}.${e.kind}.json`);
  }

  /** Durably stores a message; resolves once it is on disk. Returns the dropped messages, if any. */
  add(m: Omit<OutboxMessage, 'seq' | 'createdAt'>): Promise<number> {
    const run = this.chain.then(() => this.addNow(m));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async addNow(m: Omit<OutboxMessage, 'seq' | 'createdAt'>): Promise<number> {
    const msg: OutboxMessage = { ...m, seq: this.nextSeq, createdAt: Date.now() };
    const text = JSON.stringify(msg);
    const bytes = Buffer.byteLength(text);
    const cap = Math.min(MAX_MESSAGE_BYTES, this.limits.maxBytes);
    if (bytes > cap) {
      throw new OutboxMessageTooLarge(`${m.kind} message of ${bytes} bytes refused: over ${cap} bytes (${m.topic})`);
    }
    this.nextSeq++;
    let droppedNow = 0;
    while (
      this.entries.length > 0 &&
      (this.entries.length + 1 > this.limits.maxMessages || this.bytes + bytes > this.limits.maxBytes)
    ) {
      const victim =
        this.entries.find((e) => e.kind === 'response') ??
        this.entries.find((e) => e.kind === 'update') ??
        (this.entries[0] as Entry);
      await this.remove(victim);
      this.dropped++;
      droppedNow++;
    }
    await writeAtomic(this.file(msg), text);
    await syncDir(this.dir);
    this.entries.push({ seq: msg.seq, kind: msg.kind, bytes });
    this.bytes += bytes;
    for (const w of this.waiters) w();
    this.waiters.clear();
    return droppedNow;
  }

  /** The oldest message, or null. */
  async peek(): Promise<OutboxMessage | null> {
    for (;;) {
      const e = this.entries[0];
      if (!e) return null;
      try {
        return JSON.parse(await readFile(this.file(e), 'utf8')) as OutboxMessage;
      } catch {
        // unreadable (disk fault): drop it rather than block delivery forever
        await this.remove(e);
        this.dropped++;
      }
    }
  }

  /** Removes a delivered message. */
  async ack(seq: number): Promise<void> {
    const e = this.entries.find((x) => x.seq === seq);
    if (e) await this.remove(e);
  }

  /**
   * Moves a message out of the way to the dead-letter folder with its reason (written durably
   * before the outbox file goes, so a crash between the two leaves a copy, never nothing).
   */
  async deadLetter(msg: OutboxMessage, reason: string): Promise<void> {
    const e = this.entries.find((x) => x.seq === msg.seq);
    if (!e) return;
    await mkdir(this.deadDir, { recursive: true });
    const name = basename(this.file(e));
    // the temp file lives in the outbox (open() removes strays there), so the dead-letter folder only
    // ever holds complete letters: an operator or a script listing it never meets a half-written one
    const tmp = join(this.dir, `${name}.dead.tmp`);
    await writeSynced(tmp, JSON.stringify({ reason, deadAt: Date.now(), message: msg }));
    await rename(tmp, join(this.deadDir, name));
    await syncDir(this.deadDir);
    await this.remove(e);
    await syncDir(this.dir);
    const letters = (await readdir(this.deadDir)).filter((n) => NAME.test(n)).sort();
    for (const old of letters.slice(0, Math.max(0, letters.length - MAX_DEAD_LETTERS)))
      await unlink(join(this.deadDir, old)).catch(() => undefined);
    // counted, not the folder's size: a fleet alarm on "it went up" must go on firing past the folder's limit
    this.deadLettered++;
  }

  /** Resolves once every add() called so far is on disk. */
  async settled(): Promise<void> {
    await this.chain;
  }

  /** Resolves when a message is added (for the delivery loop). */
  waitForMessage(): Promise<void> {
    if (this.entries.length) return Promise.resolve();
    return new Promise((r) => this.waiters.add(r));
  }

  wakeAll(): void {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }

  private async remove(e: Entry): Promise<void> {
    this.entries = this.entries.filter((x) => x !== e);
    this.bytes -= e.bytes;
    await unlink(this.file(e)).catch(() => undefined);
  }
}
