import { watch } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MAX_DEAD_LETTERS, MAX_MESSAGE_BYTES, Outbox, OutboxMessageTooLarge } from '../src/mqtt/outbox.js';
import { tempDir } from './helpers/fixtures.js';

const alert = (n: number) => ({ kind: 'alert' as const, topic: 't/alert', payload: `{"n":${n}}` });
const response = (n: number) => ({ kind: 'response' as const, topic: 't/response/ping', payload: `{"r":${n}}` });

describe('outbox', () => {
  it('keeps order across reopen (durable) and removes only acknowledged messages', async () => {
    const dir = await tempDir();
    const a = await Outbox.open(dir, { maxMessages: 100, maxBytes: 1e6 });
    await Promise.all([a.add(alert(1)), a.add(response(2)), a.add(alert(3))]);
    const first = await a.peek();
    expect(first?.payload).toBe('{"n":1}');
    await a.ack(first!.seq);
    const b = await Outbox.open(dir, { maxMessages: 100, maxBytes: 1e6 }); // as after a restart
    expect(b.size).toBe(2);
    expect((await b.peek())?.payload).toBe('{"r":2}');
    await b.add(alert(4));
    const seqs: number[] = [];
    for (let m = await b.peek(); m; m = await b.peek()) {
      seqs.push(m.seq);
      await b.ack(m.seq);
    }
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(seqs).toHaveLength(3);
    expect(await readdir(dir)).toEqual([]);
  });

  it('when full drops the oldest response first, then the oldest alert, and counts drops', async () => {
    const o = await Outbox.open(await tempDir(), { maxMessages: 3, maxBytes: 1e6 });
    await o.add(alert(1));
    await o.add(response(2));
    await o.add(alert(3));
    expect(await o.add(alert(4))).toBe(1); // the response goes
    expect(await o.add(alert(5))).toBe(1); // then the oldest alert
    const left: string[] = [];
    for (let m = await o.peek(); m; m = await o.peek()) {
      left.push(m.payload);
      await o.ack(m.seq);
    }
    expect(left).toEqual(['{"n":3}', '{"n":4}', '{"n":5}']);
    expect(o.dropped).toBe(2);
  });

  it('is bounded by bytes too', async () => {
    const o = await Outbox.open(await tempDir(), { maxMessages: 1000, maxBytes: 600 });
    for (let i = 0; i < 20; i++) await o.add(alert(i));
    expect(o.sizeBytes).toBeLessThanOrEqual(600);
    expect(o.dropped).toBeGreaterThan(0);
  });

  it('a write interrupted by a crash (temp file) is discarded on open; other files are ignored', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, '0000000000000007.alert.json.tmp'), '{"half');
    await writeFile(join(dir, 'README'), 'not ours');
    const o = await Outbox.open(dir, { maxMessages: 10, maxBytes: 1e6 });
    expect(o.size).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['README']);
  });

  it('the dead-letter folder only ever holds complete letters (a lister never meets a temp file)', async () => {
    const root = await tempDir();
    const dir = join(root, 'outbox');
    const o = await Outbox.open(dir, { maxMessages: 100, maxBytes: 1e6 });
    for (let i = 0; i < 20; i++) await o.add(alert(i));
    await mkdir(o.deadDir, { recursive: true });
    const seen: string[] = [];
    const w = watch(o.deadDir, (_ev, name) => name && seen.push(name));
    try {
      for (;;) {
        const m = await o.peek();
        if (!m) break;
        await o.deadLetter(m, `refused ${m.seq}`);
        // listed while the daemon runs: every name is a whole letter that can be read
        for (const n of await readdir(o.deadDir)) JSON.parse(await readFile(join(o.deadDir, n), 'utf8'));
      }
      await new Promise((r) => setTimeout(r, 200)); // let the last watch events arrive
    } finally {
      w.close();
    }
    expect(seen.filter((n) => !n.endsWith('.json'))).toEqual([]);
    expect((await readdir(o.deadDir)).length).toBe(20);
    expect(o.deadLettered).toBe(20);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a message over the cap is refused, and the messages queued before it stay', async () => {
    const o = await Outbox.open(await tempDir(), { maxMessages: 100, maxBytes: 1e7 });
    for (let i = 0; i < 5; i++) await o.add(alert(i));
    const huge = { kind: 'update' as const, topic: 't/update', payload: 'x'.repeat(MAX_MESSAGE_BYTES) };
    await expect(o.add(huge)).rejects.toThrow(OutboxMessageTooLarge);
    await expect(o.add(huge)).rejects.toThrow(/^update message of \d+ bytes refused: over 786432 bytes \(t\/update\)$/);
    expect(o.size).toBe(5);
    expect(o.dropped).toBe(0);
    // a small byte limit caps a message too: before, one message larger than it emptied the whole outbox
    const small = await Outbox.open(await tempDir(), { maxMessages: 100, maxBytes: 10_000 });
    for (let i = 0; i < 5; i++) await small.add(alert(i));
    await expect(small.add({ ...huge, payload: 'x'.repeat(20_000) })).rejects.toThrow(/over 10000 bytes/);
    expect(small.size).toBe(5);
    await small.add(alert(5)); // and the outbox goes on
    expect(small.size).toBe(6);
  });

  it('the dead-letter folder keeps the newest letters only; a reopened outbox never reuses their names', async () => {
    const root = await tempDir();
    const dir = join(root, 'outbox');
    const o = await Outbox.open(dir, { maxMessages: 1000, maxBytes: 1e7 });
    const n = MAX_DEAD_LETTERS + 20;
    for (let i = 0; i < n; i++) await o.add(alert(i));
    for (let m = await o.peek(); m; m = await o.peek()) await o.deadLetter(m, 'refused');
    const kept = (await readdir(o.deadDir)).sort();
    expect(kept).toHaveLength(MAX_DEAD_LETTERS);
    expect(o.deadLettered).toBe(n); // a count, which goes on past the folder's limit
    const payloads = await Promise.all(
      kept.map(async (f) => JSON.parse(await readFile(join(o.deadDir, f), 'utf8')).message.payload as string),
    );
    expect(payloads[0]).toBe('{"n":20}'); // the oldest 20 went
    expect(payloads.at(-1)).toBe(`{"n":${n - 1}}`);
    // the outbox is empty now: a reopened one numbers on from the dead letters, so a new letter overwrites none
    const again = await Outbox.open(dir, { maxMessages: 1000, maxBytes: 1e7 });
    expect(again.deadLettered).toBe(MAX_DEAD_LETTERS);
    await again.add(alert(999));
    const m = await again.peek();
    expect(m!.seq).toBe(n + 1);
    await again.deadLetter(m!, 'refused');
    const after = (await readdir(again.deadDir)).sort();
    expect(after).toHaveLength(MAX_DEAD_LETTERS);
    expect(after.at(-1)).toMatch(new RegExp(`^0*${n + 1}\\.alert\\.json$`));
  });
});
