import { describe, expect, it } from 'vitest';
import { Emitter } from '../src/util/emitter.js';

function recordingLogger() {
  const lines: { obj: { err: unknown; event: string }; msg: string }[] = [];
  return {
    lines,
    logger: { error: (obj: { err: unknown; event: string }, msg: string) => lines.push({ obj, msg }) } as never,
  };
}

describe('Emitter', () => {
  it('a throwing listener is logged with its error and the others still hear the event', () => {
    const { lines, logger } = recordingLogger();
    const e = new Emitter<number>('result', logger);
    const heard: number[] = [];
    e.on(() => {
      throw new Error('broken client');
    });
    e.on((v) => {
      heard.push(v);
    });
    e.emit(1);
    e.emit(2);
    expect(heard).toEqual([1, 2]);
    expect(lines).toHaveLength(2);
    expect((lines[0]!.obj.err as Error).message).toBe('broken client');
    expect(lines[0]!.obj.event).toBe('result');
  });

  it('a rejecting async listener is logged, not an unhandled rejection', async () => {
    const { lines, logger } = recordingLogger();
    const e = new Emitter<string>('alert', logger);
    e.on(async () => {
      throw new Error('disk full');
    });
    e.emit('x');
    await new Promise((r) => setImmediate(r));
    expect((lines[0]!.obj.err as Error).message).toBe('disk full');
  });

  it('unsubscribes, also from inside a listener, and next() resolves or times out', async () => {
    const { logger } = recordingLogger();
    const e = new Emitter<number>('frame', logger);
    const heard: number[] = [];
    const off = e.on((v) => {
      heard.push(v);
      off();
    });
    e.emit(1);
    e.emit(2);
    expect(heard).toEqual([1]);
    expect(e.size).toBe(0);
    const p = e.next(1000);
    e.emit(7);
    await expect(p).resolves.toBe(7);
    await expect(e.next(10, 'frame processed')).rejects.toThrow('no frame processed within 10 ms');
    expect(e.size).toBe(0);
  });
});
