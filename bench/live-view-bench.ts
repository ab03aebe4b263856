/**
 * Cost of the live view: processed fps of the running daemon (shipped model, a video source read
 * as fast as possible, so fps is the pipeline's capacity and any cost shows) with no page open and
 * with a page open, alternating phases in one run. The page is a
 * WebSocket client in a separate process that takes every message like a browser tab would (the
 * bedside display is normally another device; drawing is the browser's cost, not the box's).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PHANTOM } from '../src/capture/phantom.js';
import { validateConfig } from '../src/config/load.js';
import { startServices } from '../src/daemon/services.js';
import { silentLogger } from '../src/util/logger.js';
import { freePort } from './mosquitto.js';
import { phantomVideo } from './phantom-video.js';

const PHASE_S = Number(process.env.BENCH_LIVE_SECONDS ?? 8);
const CLIENT = `
const WebSocket = require('ws');
const ws = new WebSocket(process.argv[1]);
let frames = 0, bytes = 0;
ws.on('open', () => console.log('open'));
ws.on('message', (m) => {
  bytes += m.length;
  const j = JSON.parse(m);
  if (j.type === 'frame') { frames++; Buffer.from(j.jpeg, 'base64'); }
});
process.on('SIGTERM', () => { console.log(JSON.stringify({ frames, bytes })); process.exit(0); });
`;

async function main(): Promise<void> {
  const dir = await mkdtemp(join(os.tmpdir(), 'te-livebench-'));
  const video = await phantomVideo(dir);
  const config = validateConfig({
    stateDir: join(dir, 'state'),
    logLevel: 'fatal',
    capture: {
      source: 'file',
      roi: DEFAULT_PHANTOM.roi,
      file: {
        path: video,
        width: DEFAULT_PHANTOM.screenWidth,
        height: DEFAULT_PHANTOM.screenHeight,
        realtime: false,
        loop: true,
      },
    },
    mqtt: { embeddedPort: await freePort() },
    liveView: { enabled: true, port: 0 },
  });
  const svc = await startServices(config, silentLogger());
  await new Promise((r) => setTimeout(r, 2000)); // warm-up
  const phase = async (withPage: boolean) => {
    let client: ChildProcess | null = null;
    let clientOut = '';
    if (withPage) {
      client = spawn(process.execPath, ['-e', CLIENT, `${svc.live!.url.replace('http', 'ws')}/ws`], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      client.stdout!.on('data', (d: Buffer) => (clientOut += d.toString()));
      const deadline = Date.now() + 15_000;
      while (!clientOut.includes('open')) {
        if (Date.now() > deadline) throw new Error('live view bench: the page client did not connect');
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 500)); // receiving
    }
    const s0 = svc.daemon.pipelineCounters()!.processed;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, PHASE_S * 1000));
    const fps = (svc.daemon.pipelineCounters()!.processed - s0) / ((performance.now() - t0) / 1000);
    let received: { frames: number; bytes: number } | null = null;
    if (client) {
      client.kill('SIGTERM');
      await new Promise((r) => client!.once('exit', r));
      received = JSON.parse(clientOut.trim().split('\n').at(-1) ?? '');
    }
    return { withPage, fps, received };
  };
  const phases = [];
  for (const withPage of [false, true, false, true]) phases.push(await phase(withPage));
  await svc.stop();
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const off = mean(phases.filter((p) => !p.withPage).map((p) => p.fps));
  const on = mean(phases.filter((p) => p.withPage).map((p) => p.fps));
  console.log('');
  console.log(
    `## Live view cost (${PHASE_S} s phases, alternating, one run; video source as fast as possible, ` +
      'shipped model, 2 threads)',
  );
  console.log('');
  console.log('| phase | page open | processed fps | frames sent to the page/s | KB/s to the page |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const [i, p] of phases.entries()) {
    const sent = p.received ? (p.received.frames / PHASE_S).toFixed(1) : '-';
    const kb = p.received ? (p.received.bytes / 1024 / PHASE_S).toFixed(0) : '-';
    console.log(`| ${i + 1} | ${p.withPage ? 'yes' : 'no'} | ${p.fps.toFixed(2)} | ${sent} | ${kb} |`);
  }
  console.log('');
  console.log(
    `processed fps with the page open: ${on.toFixed(2)} vs ${off.toFixed(2)} without: ` +
      `${(((on - off) / off) * 100).toFixed(1)}% (target: a drop of at most 10%)`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
