/** An in-process daemon + MQTT service on the phantom, for contract tests. */
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import { validateConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { startServices, type Services } from '../../src/daemon/services.js';
import { compileSchema } from '../../src/util/schema.js';
import { PAYLOADS } from '../../src/mqtt/topic-table.js';
import { logger, tempDir } from './fixtures.js';

export async function testConfig(url: string | null, patch: Record<string, unknown> = {}): Promise<Config> {
  const stateDir = await tempDir('te-state-');
  const base = {
    deviceId: 'box-a',
    logLevel: 'fatal', // set_config re-applies it to the (shared, silent) test logger
    stateDir,
    // the probe lifts between appearances: tracks end at the imaging gate, whatever the model makes of the gland
    capture: { phantom: { fps: 20, cycleFrames: 40, visibleFraction: 0.5, nodules: 1, liftWhenAbsent: true } },
    alerts: { minAreaPx: 40, memoryS: 0.3 },
    mqtt: { url, telemetryIntervalS: 1, reconnectMinMs: 200, reconnectMaxMs: 1000, keepaliveS: 5 },
  };
  return validateConfig(deepMerge(base, patch));
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && typeof a[k] === 'object'
        ? deepMerge(a[k] as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export async function startDaemon(config: Config): Promise<Services> {
  return startServices(config, logger);
}

/**
 * A message as a subscriber (QoS 1) received it: qos is the lower of the publisher's and 1; retain is set on a
 * retained copy.
 */
export interface Received {
  topic: string;
  payload: Buffer;
  props: Record<string, unknown>;
  qos: number;
  retain: boolean;
}

export async function subscriber(
  url: string,
  topic: string,
  opts: IClientOptions = {},
): Promise<{ client: MqttClient; messages: Received[] }> {
  const client = mqtt.connect(url, { protocolVersion: 5, reconnectPeriod: 200, ...opts });
  const messages: Received[] = [];
  client.on('message', (t, p, packet) =>
    messages.push({
      topic: t,
      payload: p,
      props: (packet.properties ?? {}) as Record<string, unknown>,
      qos: packet.qos,
      retain: packet.retain,
    }),
  );
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
  if (!v(payload))
    throw new Error(
      `${kind} payload does not match its schema: ${JSON.stringify(v.errors)} in ` +
        `${JSON.stringify(payload).slice(0, 300)}`,
    );
}

/**
 * The clock of a stall: CPU time this process (the test with its in-process daemon, all threads)
 * has been given since the last progress, not wall time. On a machine where higher-priority work
 * takes the cores, wall time passes while the daemon gets no chance to run; only a process that
 * runs and still makes no progress is hung.
 */
export class StallClock {
  private last: unknown;
  private since: number;

  /** `children`: pids of daemons run as child processes, whose CPU time counts too */
  constructor(
    private readonly progress: () => unknown,
    private readonly children: () => (number | undefined)[] = () => [],
  ) {
    this.last = progress();
    this.since = this.cpuMs();
  }

  private cpuMs(): number {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000 + this.children().reduce<number>((a, pid) => a + (pid ? childCpuMs(pid) : 0), 0);
  }

  /** CPU ms since progress() last changed (checking it now). */
  stalledMs(): number {
    const now = this.progress();
    if (now !== this.last) {
      this.last = now;
      this.since = this.cpuMs();
    }
    return this.cpuMs() - this.since;
  }
}

/** utime + stime of a process from /proc (Linux; clock ticks of 10 ms), 0 once it is gone. */
function childCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

/**
 * Like `until`, but bounded by silence, not by total time: the clock restarts whenever `progress()`
 * changes (e.g. a count of messages received), and it runs only while this process gets CPU time
 * (StallClock), so a busy machine that is still moving is waited for, and only a hang (no progress
 * for `stallMs` of CPU time) fails. The test's own timeout is the backstop.
 */
export async function untilProgress<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  progress: () => unknown,
  stallMs: number,
  what: string,
  children?: () => (number | undefined)[],
): Promise<T> {
  const clock = new StallClock(progress, children);
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (clock.stalledMs() > stallMs)
      throw new Error(`timed out waiting for ${what}: no progress for ${stallMs} ms of CPU time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * How long a wait may see no progress at all before it fails. Generous: the suite shares 2 cores
 * with model training, and only a hang, not a slow machine, should fail a test.
 */
export const STALL_MS = 90_000;

/** Progress signal: frames the daemon has processed (changes while its pipeline moves). */
export function framesProgress(d: Services): () => number {
  return () => d.daemon.pipelineStats()?.processed ?? 0;
}

/** Progress signal: outbox messages received (alerts, responses, update reports: QoS 1, delivered in order). */
export function deliveredProgress(messages: { topic: string }[]): () => number {
  const outboxTopic = /\/(alert|update|response\/.+)$/;
  let seen = 0;
  let count = 0;
  return () => {
    for (; seen < messages.length; seen++) if (outboxTopic.test(messages[seen]!.topic)) count++;
    return count;
  };
}

/** Either signal: the pipeline or the outbox is moving. */
export function anyProgress(...signals: (() => number)[]): () => string {
  return () => signals.map((s) => s()).join('|');
}
