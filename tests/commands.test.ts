import { describe, expect, it } from 'vitest';
import { CommandRouter, redact, type CommandTarget } from '../src/mqtt/commands.js';
import { mergePatch } from '../src/config/patch.js';
import { validateConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';

function target(): CommandTarget & { applied: Config[] } {
  let cfg = validateConfig({ mqtt: { password: 's3cret' } });
  const applied: Config[] = [];
  return {
    applied,
    config: () => cfg,
    applyConfig: async (c) => { cfg = c; applied.push(c); },
    snapshot: async () => ({ seq: 1 }),
    restartPipeline: async () => {},
    update: async (url) => ({ accepted: url }),
  };
}

describe('command router', () => {
  it('merge patch: objects merge, values replace, null removes', () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, d: 3 }, { a: { b: 5, c: null }, e: [1] })).toEqual({ a: { b: 5 }, d: 3, e: [1] });
  });

  it('get_config redacts the broker password', async () => {
    const r = new CommandRouter(target(), 1000);
    const reply = await r.handle('get_config', Buffer.from('{"transaction":"t"}'));
    expect((reply.result as Config).mqtt.password).toBe('***');
    expect(redact(validateConfig({})).mqtt.password).toBeUndefined();
  });

  it('set_config applies a valid patch once and refuses an invalid one without applying', async () => {
    const t = target();
    const r = new CommandRouter(t, 10_000);
    const ok = await r.handle('set_config', Buffer.from(JSON.stringify({ config: { alerts: { memoryS: 2.5 } } })));
    expect(ok.ok).toBe(true);
    expect(t.applied).toHaveLength(1);
    expect(t.config().alerts.memoryS).toBe(2.5);
    const bad = await r.handle('set_config', Buffer.from(JSON.stringify({ config: { alerts: { minIou: 2 } } })));
    expect(bad.ok).toBe(false);
    expect(bad.error).toContain('alerts.minIou: must be <= 1');
    expect(t.applied).toHaveLength(1);
    const missing = await r.handle('set_config', Buffer.from('{}'));
    expect(missing.error).toContain('config: must be an object');
  });

  it('an empty payload is an empty request', async () => {
    const reply = await new CommandRouter(target(), 100).handle('ping', Buffer.alloc(0));
    expect(reply).toEqual({ command: 'ping', transaction: null, ok: true, result: { pong: true } });
  });
});
