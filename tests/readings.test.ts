/** System readings for telemetry: a reading that fails or hangs becomes null instead of stalling the tick. */
import { describe, expect, it } from 'vitest';
import { orNullAfter } from '../src/system/readings.js';

describe('system readings', () => {
  it('a reading is its value, null when it fails, and null when it outlasts the bound', async () => {
    expect(await orNullAfter(Promise.resolve(7), 1000)).toBe(7);
    expect(await orNullAfter(Promise.reject(new Error('no df')), 1000)).toBeNull();
    // df on a stuck network mount never returns: the tick must still finish
    const t0 = Date.now();
    expect(await orNullAfter(new Promise<number>(() => undefined), 50)).toBeNull();
    expect(Date.now() - t0).toBeLessThan(5000);
  });
});
