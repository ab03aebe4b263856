/**
 * `npm run bench:fleet`: N daemons (phantom source, separate processes) against one mosquitto.
 * Prints messages/s through the broker, end-to-end alert latency (frame capture -> subscriber)
 * p50/p99, and daemon and broker CPU. Env: FLEET_N (default 20), FLEET_SECONDS (default 30),
 * FLEET_FPS per daemon (default 2).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import os from 'node:os';
import mqtt from 'mqtt';
import { Mosquitto } from './mosquitto.js';

const N = Number(process.env.FLEET_N ?? 20);
const SECONDS = Number(process.env.FLEET_SECONDS ?? 30);
const FPS = Number(process.env.FLEET_FPS ?? 2);
const TICK = 100; // clock ticks per second (Linux USER_HZ)

function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK; // utime + stime
  } catch {
    return 0;
  }
}

function pct(a: number[], p: number): number {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'te-fleet-'));
  const broker = await Mosquitto.start(join(dir, 'broker'));
  const brokerPid = broker.pid!;
  const sub = mqtt.connect(broker.url, { protocolVersion: 5 });
  await new Promise<void>((r) => sub.once('connect', () => r()));
  let messages = 0;
  let counting = false;
  const latencies: number[] = [];
  sub.on('message', (topic, payload) => {
    if (!counting) return;
    messages++;
    if (topic.endsWith('/alert')) {
      const a = JSON.parse(payload.toString()) as { event: string; lastSeenAt: number };
      // detected/updated are raised on the frame captured at lastSeenAt
      if (a.event !== 'nodule_cleared') latencies.push(Date.now() - a.lastSeenAt);
    }
  });
  await sub.subscribeAsync('thyroid-edge/#', { qos: 1 });
  const daemons: ChildProcess[] = [];
  for (let i = 0; i < N; i++) {
    const id = `fleet-${String(i).padStart(2, '0')}`;
    daemons.push(
      spawn('node', ['dist/src/cli.js', 'run'], {
        stdio: 'ignore',
        env: {
          ...process.env,
          THYROID_EDGE__deviceId: id,
          THYROID_EDGE__stateDir: join(dir, id),
          THYROID_EDGE__logLevel: 'warn',
          THYROID_EDGE__model__threads: '1',
          THYROID_EDGE__mqtt__url: broker.url,
          THYROID_EDGE__mqtt__telemetryIntervalS: '5',
          THYROID_EDGE__capture__phantom__fps: String(FPS),
          THYROID_EDGE__capture__phantom__seed: String(i + 1),
          THYROID_EDGE__capture__phantom__cycleFrames: '20',
          THYROID_EDGE__alerts__memoryS: '0.3',
        },
      }),
    );
  }
  await new Promise((r) => setTimeout(r, 15_000)); // model loads and warm-up
  const cpu0 = { d: daemons.map((d) => cpuSeconds(d.pid!)), b: cpuSeconds(brokerPid), t: performance.now() };
  counting = true;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  counting = false;
  const wall = (performance.now() - cpu0.t) / 1000;
  const dCpu = daemons.map((d, i) => (cpuSeconds(d.pid!) - cpu0.d[i]!) / wall);
  const bCpu = (cpuSeconds(brokerPid) - cpu0.b) / wall;
  for (const d of daemons) d.kill('SIGTERM');
  await Promise.all(
    daemons.map(
      (d) => new Promise((r) => (d.exitCode !== null || d.signalCode !== null ? r(null) : d.once('exit', r))),
    ),
  );
  sub.end(true);
  await broker.stop();
  console.log(
    `fleet bench: ${N} daemons (phantom ${FPS} fps each, 1 inference thread), one mosquitto, ${SECONDS} s ` +
      `measured after 15 s warm-up, on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'cpu'})`,
  );
  console.log(`messages through the broker to one subscriber of thyroid-edge/#: ${(messages / wall).toFixed(1)} msg/s`);
  console.log(
    `alert latency frame capture -> subscriber (${latencies.length} alerts): p50 ` +
      `${pct(latencies, 50).toFixed(0)} ms, p99 ${pct(latencies, 99).toFixed(0)} ms`,
  );
  console.log(
    `daemon CPU per process: mean ${((dCpu.reduce((a, b) => a + b, 0) / N) * 100).toFixed(1)} %, max ` +
      `${(Math.max(...dCpu) * 100).toFixed(1)} % of one core; all daemons ` +
      `${(dCpu.reduce((a, b) => a + b, 0) * 100).toFixed(0)} %`,
  );
  console.log(`broker CPU: ${(bCpu * 100).toFixed(1)} % of one core`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
