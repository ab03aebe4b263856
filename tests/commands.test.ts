import { describe, expect, it } from 'vitest';
import type { Logger } from 'pino';
import { CommandQueue } from '../src/mqtt/command-queue.js';
import { CommandRouter, redact, type CommandTarget } from '../src/mqtt/commands.js';
import { Topics } from '../src/mqtt/topics.js';
import { COMMAND_TABLE, COMMANDS, type SnapshotResult } from '../src/mqtt/command-table.js';
import { compileSchema } from '../src/util/schema.js';
import { keysOutside } from '../src/config/patch.js';
import { mergePatch } from '../src/util/merge-patch.js';
import { validateConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';

const SNAPSHOT: SnapshotResult = {
  seq: 1,
  capturedAt: 1795754520000,
  width: 2,
  height: 1,
  roi: { x: 0, y: 0, width: 2, height: 1 },
  nodules: [],
  maskRle: { size: [1, 2], counts: [2] },
  maskPngBase64: '',
};

function target(
  mqtt: Record<string, unknown> = {},
): CommandTarget & { applied: Config[]; updates: string[]; restarts: number } {
  let cfg = validateConfig({ mqtt: { password: 's3cret', ...mqtt } });
  const applied: Config[] = [];
  const t = {
    applied,
    updates: [] as string[],
    restarts: 0,
    config: () => cfg,
    applyConfig: async (c: Config) => {
      cfg = c;
      applied.push(c);
    },
    snapshot: async () => SNAPSHOT,
    restartPipeline: async () => {
      t.restarts++;
    },
    update: async (url: string) => {
      t.updates.push(url);
      return { accepted: true as const, url };
    },
  };
  return t;
}

const ask = (r: CommandRouter, command: string, body: unknown) => r.handle(command, Buffer.from(JSON.stringify(body)));

describe('command router', () => {
  it('merge patch: objects merge, values replace, null removes', () => {
    expect(mergePatch({ a: { b: 1, c: 2 }, d: 3 }, { a: { b: 5, c: null }, e: [1] })).toEqual({
      a: { b: 5 },
      d: 3,
      e: [1],
    });
  });

  it('get_config redacts the broker password', async () => {
    const r = new CommandRouter(target(), 1000);
    const reply = await r.handle('get_config', Buffer.from('{"transaction":"t"}'));
    expect((reply.result as Config).mqtt.password).toBe('***');
    expect(redact(validateConfig({})).mqtt.password).toBeUndefined();
  });

  it('by default an unsigned set_config changes the log level only: rule, alerts, gate, ROI refused', async () => {
    const t = target();
    expect(t.config().mqtt.setConfigKeys).toEqual(['logLevel']);
    const r = new CommandRouter(t, 10_000);
    for (const config of [
      { postprocess: { minAreaPx: 60000 } },
      { alerts: { confirmEvidenceS: 60 } },
      { imagingGate: { minMean: 255 } },
      { capture: { roi: { x: 0, y: 0, width: 8, height: 8 } } },
    ]) {
      const reply = await ask(r, 'set_config', { config });
      expect(reply.ok).toBe(false);
      expect(reply.error).toMatch(/not in mqtt\.setConfigKeys \(logLevel\); use a signed config bundle/);
    }
    expect(t.applied).toHaveLength(0);
    expect((await ask(r, 'set_config', { config: { logLevel: 'debug' } })).ok).toBe(true);
    expect(t.config().logLevel).toBe('debug');
    // louder, not quieter: "error" or "fatal" would hide the warnings that show what a sender tries next
    for (const level of ['error', 'fatal']) {
      expect((await ask(r, 'set_config', { config: { logLevel: level } })).error).toBe(
        `logLevel: "${level}" would hide warnings; set_config allows trace, debug, info and warn ` +
          '(a signed config bundle may set any level)',
      );
    }
    expect((await ask(r, 'set_config', { config: { logLevel: 'warn' } })).ok).toBe(true);
    expect(t.applied.map((c) => c.logLevel)).toEqual(['debug', 'warn']);
  });

  it('set_config applies a valid patch once and refuses an invalid one without applying', async () => {
    const t = target({ setConfigKeys: null });
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
    expect(missing.error).toBe('config: is required');
    expect(t.applied).toHaveLength(1);
  });

  it('mqtt.setConfigKeys narrows set_config: a key outside the list is refused by name, nothing applied', async () => {
    expect(keysOutside({ alerts: { memoryS: 1 }, capture: { roi: null } }, ['alerts', 'capture.roi'])).toEqual([]);
    // resetting a whole subtree is more than one of its keys; an empty object sets nothing
    expect(keysOutside({ capture: null, postprocess: {} }, ['capture.roi'])).toEqual(['capture', 'postprocess']);
    expect(keysOutside({ alertsX: 1 }, ['alerts'])).toEqual(['alertsX']);
    expect(keysOutside({ anything: 1 }, null)).toEqual([]);

    const t = target({ setConfigKeys: ['logLevel', 'alerts'] });
    const r = new CommandRouter(t, 10_000);
    expect((await ask(r, 'set_config', { config: { alerts: { memoryS: 2 }, logLevel: 'debug' } })).ok).toBe(true);
    const refused = await ask(r, 'set_config', {
      transaction: 7,
      config: { alerts: { memoryS: 3 }, postprocess: { minAreaPx: 60000 } },
    });
    expect(refused).toMatchObject({ ok: false, transaction: 7 });
    expect(refused.error).toMatch(/^config: postprocess\.minAreaPx: not in mqtt\.setConfigKeys \(logLevel, alerts\)/);
    expect(t.applied).toHaveLength(1);
    expect(t.config().alerts.memoryS).toBe(2);
    expect(t.config().postprocess.minAreaPx).toBeNull();
    expect(() => validateConfig({ mqtt: { setConfigKeys: ['alerts.'] } })).toThrow(/mqtt\.setConfigKeys/);
  });

  it('an empty payload is an empty request', async () => {
    const reply = await new CommandRouter(target(), 100).handle('ping', Buffer.alloc(0));
    expect(reply).toEqual({ command: 'ping', transaction: null, ok: true, result: { pong: true } });
  });

  it('every command answers a valid request with a result matching its result schema', async () => {
    const r = new CommandRouter(target({ setConfigKeys: null }), 100_000);
    const requests: Record<string, unknown> = {
      ping: {},
      get_config: {},
      set_config: { config: { postprocess: { minAreaPx: 9 } } },
      snapshot: {},
      restart_pipeline: {},
      update: { url: 'https://fleet.example/m.json' },
    };
    expect(Object.keys(requests).sort()).toEqual([...COMMANDS].sort());
    for (const c of COMMANDS) {
      const reply = await ask(r, c, { transaction: `t-${c}`, ...(requests[c] as object) });
      expect(reply, c).toMatchObject({ command: c, transaction: `t-${c}`, ok: true });
      const valid = compileSchema(COMMAND_TABLE[c].result);
      expect(valid(reply.result), `${c}: ${JSON.stringify(valid.errors)}`).toBe(true);
    }
  });

  it('restart_pipeline: at most one per 30 s, whoever asks', async () => {
    const t = target();
    let now = 1_000_000;
    const r = new CommandRouter(t, 1000, () => now);
    expect((await ask(r, 'restart_pipeline', {})).ok).toBe(true);
    now += 29_000;
    expect((await ask(r, 'restart_pipeline', {})).error).toBe(
      'the pipeline restarted 29 s ago; at most one restart per 30 s',
    );
    now += 1_000;
    expect((await ask(r, 'restart_pipeline', {})).ok).toBe(true);
    expect(t.restarts).toBe(2);
  });

  it('set_config that changes capture shares restart_pipeline’s limit; other keys do not', async () => {
    const t = target({ setConfigKeys: ['capture.roi', 'logLevel'] });
    let now = 1_000_000;
    const r = new CommandRouter(t, 100_000, () => now);
    const roi = (x: number) => ({ config: { capture: { roi: { x, y: 0, width: 100, height: 100 } } } });
    expect((await ask(r, 'set_config', roi(1))).ok).toBe(true);
    now += 10_000;
    expect((await ask(r, 'set_config', roi(2))).error).toBe(
      'a capture change restarts the pipeline: the pipeline restarted 10 s ago; at most one restart per 30 s',
    );
    expect((await ask(r, 'restart_pipeline', {})).ok).toBe(false);
    // a key that does not restart capture is not held back
    expect((await ask(r, 'set_config', { config: { logLevel: 'debug' } })).ok).toBe(true);
    expect(t.applied.map((c) => c.capture.roi?.x)).toEqual([1, 1]);
    now += 20_000;
    expect((await ask(r, 'set_config', roi(3))).ok).toBe(true);
    expect(t.config().capture.roi?.x).toBe(3);
    expect(t.restarts).toBe(0); // the daemon's applyConfig restarts, not the router
  });

  it('each command with arguments refuses a bad field, naming the key and the reason, and runs nothing', async () => {
    const t = target();
    const r = new CommandRouter(t, 100_000);
    const refused: [string, unknown, string][] = [
      ['set_config', {}, 'config: is required'],
      ['set_config', { config: 'x' }, 'config: must be object'],
      ['set_config', { config: [1] }, 'config: must be object'],
      ['set_config', { config: null }, 'config: must be object'],
      ['update', {}, 'url: is required'],
      ['update', { url: 5 }, 'url: must be string'],
      ['update', { url: '' }, 'url: must NOT have fewer than 1 characters'],
      ['update', { url: `https://x/${'a'.repeat(2000)}` }, 'url: must NOT have more than 2000 characters'],
    ];
    for (const [command, body, error] of refused) {
      const reply = await ask(r, command, { transaction: 'bad', ...(body as object) });
      expect(reply, JSON.stringify(body)).toEqual({ command, transaction: 'bad', ok: false, error });
    }
    expect(t.applied).toEqual([]);
    expect(t.updates).toEqual([]);
    // keys a command does not take are ignored, as before the schemas
    expect(await ask(r, 'ping', { transaction: 1, extra: { any: 'thing' } })).toMatchObject({
      ok: true,
      result: { pong: true },
    });
    expect((await ask(r, 'update', { url: 'https://fleet.example/m.json', config: 7 })).ok).toBe(true);
    expect(t.updates).toEqual(['https://fleet.example/m.json']);
  });

  it('envelope rules come before the command: size, JSON, object, transaction, refusal, unknown command', async () => {
    const t = target();
    const r = new CommandRouter(t, 64);
    expect((await r.handle('ping', Buffer.alloc(65, 32))).error).toBe('payload of 65 bytes exceeds the limit of 64');
    expect((await r.handle('ping', Buffer.from('{no'))).error).toMatch(/^payload is not JSON: /);
    expect((await r.handle('ping', Buffer.from('[1]'))).error).toBe('payload must be a JSON object');
    expect(await ask(r, 'update', { transaction: { a: 1 } })).toEqual({
      command: 'update',
      transaction: null,
      ok: false,
      error: 'transaction: must be a string or a number',
    });
    expect((await ask(new CommandRouter(t, 1000), 'ping', { transaction: 'x'.repeat(201) })).error).toBe(
      'transaction: longer than 200 characters',
    );
    // a refusal found by the transport (a bad response topic) wins over the command's own checks, and keeps the
    // transaction
    expect(await r.handle('update', Buffer.from('{"transaction":"r"}'), 'response topic refused')).toEqual({
      command: 'update',
      transaction: 'r',
      ok: false,
      error: 'response topic refused',
    });
    expect((await ask(r, 'reboot', { transaction: 'u' })).error).toBe(
      `unknown command "reboot"; known: ${COMMANDS.join(', ')}`,
    );
    expect((await ask(r, 'toString', {})).error).toMatch(/^unknown command "toString"/);
    expect(t.updates).toEqual([]);
  });
});

describe('command queue', () => {
  /** A queue whose router holds every request until `release()`; replies are collected from the outbox. */
  function queue(maxBytes = 65536) {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const seen: number[] = [];
    // the real router (its size rule), holding each request at the gate and recording what reached it
    const router = new (class extends CommandRouter {
      override async handle(command: string, payload: Buffer, refusal?: string) {
        await gate;
        seen.push(payload.length);
        return super.handle(command, payload, refusal);
      }
    })(target(), maxBytes);
    const replies: { ok: boolean; error?: string }[] = [];
    const warnings: string[] = [];
    const q = new CommandQueue(router, new Topics('thyroid-edge', 'box-a'), {
      deviceId: () => 'box-a',
      store: async (m) => {
        replies.push(JSON.parse(String(m.payload)) as { ok: boolean; error?: string });
      },
      logger: { warn: (_o: unknown, msg: string) => warnings.push(msg), error: () => {} } as unknown as Logger,
    });
    return { q, release, seen, replies, warnings };
  }
  const topic = 'thyroid-edge/box-a/request/ping';

  it('a retained request is never run; an oversized one waits as its size only and is refused by it', async () => {
    const { q, release, seen, replies, warnings } = queue(1024);
    q.receive(topic, Buffer.from('{}'), undefined, true);
    q.receive(topic, Buffer.alloc(5000, 32));
    q.receive(topic, Buffer.from('{}'));
    release();
    await q.settled();
    expect(warnings.filter((w) => /retained/.test(w))).toEqual([
      'retained request ignored: commands are never retained',
    ]);
    expect(seen).toEqual([0, 2]); // the router never got the 5000 bytes
    expect(replies.map((r) => r.error ?? 'ok')).toEqual(['payload of 5000 bytes exceeds the limit of 1024', 'ok']);
  });

  it('the bytes waiting are bounded (16 MiB): beyond, requests are dropped unanswered, not held', async () => {
    const { q, release, seen, replies, warnings } = queue();
    for (let i = 0; i < 300; i++) q.receive(topic, Buffer.alloc(65536, 32)); // 18.75 MiB in all
    release();
    await q.settled();
    expect(seen.filter((n) => n === 65536).length).toBe(256); // 16 MiB of them were held, the rest dropped
    expect(replies.length).toBe(256);
    expect(q.droppedFull).toBe(44);
    expect(warnings.filter((w) => /dropped unanswered/.test(w)).length).toBe(1); // logged once per interval
  });

  it('the requests waiting are bounded (2000), and a dropped one costs no outbox write and keeps nothing', async () => {
    const { q, release, replies, warnings } = queue();
    // with MQTT 5 properties too: a response topic and 1 KiB of correlation data each
    const props = { responseTopic: 'thyroid-edge/box-a/response/x', correlationData: Buffer.alloc(1024, 1) };
    for (let i = 0; i < 2500; i++) q.receive(topic, Buffer.from('{}'), props);
    release();
    await q.settled();
    expect(replies.length).toBe(2000);
    expect(replies.every((r) => r.ok)).toBe(true);
    expect(q.droppedFull).toBe(500);
    expect(warnings.filter((w) => /dropped unanswered/.test(w)).length).toBe(1);
  });
});
