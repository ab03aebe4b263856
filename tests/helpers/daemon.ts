/** An in-process daemon + MQTT service on the phantom, for contract tests. */
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import { validateConfig } from '../../src/daemon/config/load.js';
import type { Config } from '../../src/daemon/config/schema.js';
import { startServices, type Services } from '../../src/daemon/services.js';
import { compileSchema } from '../../src/util/schema.js';
import { PAYLOADS } from '../../src/daemon/mqtt/payloads.js';
import { logger, tempDir } from './fixtures.js';

export async function testConfig(url: string | null, patch: Record<string, unknown> = {}): Promise<Config> {
  const stateDir = await tempDir('te-state-');
  const base = {
    deviceId: 'box-a',
    logLevel: 'fatal', // set_config re-applies it to the (shared, silent) test logger
    stateDir,
    capture: { phantom: { fps: 20, cycleFrames: 40, visibleFraction: 0.5, nodules: 1 } },
    alerts: { minAreaPx: 40, memoryS: 0.3 },
    mqtt: { url, telemetryIntervalS: 1, reconnectMinMs: 200, reconnectMaxMs: 1000, keepaliveS: 5 },
  };
  return validateConfig(deepMerge(base, patch));
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && typeof a[k] === 'object' ? deepMerge(a[k] as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

export async function startDaemon(config: Config): Promise<Services> {
  return startServices(config, logger);
}

export async function subscriber(url: string, topic: string, opts: IClientOptions = {}): Promise<{ client: MqttClient; messages: { topic: string; payload: Buffer; props: Record<string, unknown> }[] }> {
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 200, ...opts });
  const messages: { topic: string; payload: Buffer; props: Record<string, unknown> }[] = [];
  client.on('message', (t, p, packet) => messages.push({ topic: t, payload: p, props: (packet.properties ?? {}) as Record<string, unknown> }));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });
  await client.subscribeAsync(topic, { qos: 1 });
  return { client, messages };
}

export async function until<T>(fn: () => T | undefined | false, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const validators = Object.fromEntries(Object.entries(PAYLOADS).map(([k, s]) => [k, compileSchema(s)]));

export function expectValid(kind: keyof typeof validators, payload: unknown): void {
  const v = validators[kind]!;
  if (!v(payload)) throw new Error(`${kind} payload does not match its schema: ${JSON.stringify(v.errors)} in ${JSON.stringify(payload).slice(0, 300)}`);
}

/**
 * Like `until`, but bounded by silence, not by total time: the clock restarts whenever `progress()`
 * changes (e.g. a count of messages received), so a busy machine that is still moving is waited
 * for, and only a hang (no progress for `stallMs`) fails.
 */
export async function untilProgress<T>(
  fn: () => T | undefined | false,
  progress: () => unknown,
  stallMs: number,
  what: string,
): Promise<T> {
  let last = progress();
  let since = Date.now();
  for (;;) {
    const v = fn();
    if (v) return v;
    const now = progress();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since > stallMs) {
      throw new Error(`timed out waiting for ${what}: no progress for ${stallMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
