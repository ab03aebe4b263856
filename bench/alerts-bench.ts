/**
 * `npm run bench:alerts`: scan clips made from DDTI frames (bench/scan-clips.ts) played through the
 * real path: ffmpeg file source -> preprocessing -> the shipped model (models/, via its card) ->
 * post-processing -> imaging gate -> tracker, with results and alerts read from a real mosquitto.
 * Scores per nodule appearance and per clip kind, plus the per-frame detection figures, so the
 * table says where the model, not the tracker, limits a target.
 *
 *   node dist/bench/alerts-bench.js [--small] [--split test|val] [--seed N | --seeds 1-5] [--alerts JSON] [--gate JSON]
 *                                   [--out FILE]
 *                                   [--view roi|screen] [--clean] [--dump FILE] [--replay FILE --grid JSON]
 *                                   [--model FILE.onnx] [--structure [--stride K]] [--depth N]
 *
 * `--view roi` (the default) plays what a calibrated box feeds the model: the imaging area alone;
 * `--view screen` the whole screen with its margins and overlays (an uncalibrated, whole-screen ROI).
 * `--clean` leaves out the synthetic speckle, gain and noise (a diagnosis: is the model misled by them?).
 *
 * Tuning the tracker: `--dump FILE` keeps a run's results; `--replay FILE` feeds them to the tracker
 * offline (src/alerts/tracker.ts, pure) once per alerts config in `--grid` (a JSON array of partial
 * configs), in seconds instead of one real-time playback each. The replay approximates the gate's
 * per-frame verdict by its debounced one (results carry only that), so confirm a choice with a real run.
 *
 * `--depth N` adds N depth views to the plan: a drift view whose picture is rescaled halfway through (a depth or
 * zoom change on the scanner), which must not raise a second alert for the same nodule.
 *
 * `--model` plays a candidate file (its card beside it) instead of models/, e.g. before shipping it.
 * `--structure` plays nothing: it prints the imaging gate's structure change per transition of the clip
 * (bench/clip-structure.ts), what `imagingGate.viewChangeLevel` was chosen from.
 *
 * `--seeds 1-5` plays several clip sets one after another, each reported as with `--seed`, then all of them
 * pooled (bench/alert-tally.ts): counts added, each ratio taken once, so a target is judged on every event, not on
 * one clip set's few dozen.
 *
 * `test` frames are for reporting; tune on `val` (--split val). Without ../shared/datasets/ddti it
 * skips with a message (exit 0).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import os from 'node:os';
import { join, resolve } from 'node:path';
import mqtt from 'mqtt';
import type { Rect } from '../src/capture/frame-source.js';
import type { AlertPayload, ResultPayload } from '../src/mqtt/payloads.js';
import { AlertTracker, DEFAULT_TRACKER, type AlertEvent } from '../src/alerts/tracker.js';
import { modelCardPath, validateConfig } from '../src/config/load.js';
import { loadModelCard } from '../src/inference/model-card.js';
import { parseIntList } from '../src/util/int-list.js';
import {
  addTallies,
  appearanceFigures,
  headlineOf,
  type AppearanceCounts,
  type Headline,
  type Tally,
} from './alert-tally.js';
import { clipStructure } from './clip-structure.js';
import { Mosquitto } from './mosquitto.js';
import {
  FULL_PLAN,
  makeScanVideo,
  SMALL_PLAN,
  showsNodule,
  type ClipKind,
  type ClipView,
  type FrameTruth,
  type ScanVideo,
} from './scan-clips.js';

interface Args {
  small: boolean;
  split: 'val' | 'test';
  /** clip sets to play, one after another (`--seed N` or `--seeds 1-5`); several are also reported pooled */
  seeds: number[];
  fps: number;
  alerts: Record<string, unknown>;
  gate: Record<string, unknown>;
  out: string | null;
  ddti: string;
  verbose: boolean;
  dump: string | null;
  view: ClipView;
  clean: boolean;
  replay: string | null;
  grid: Record<string, unknown>[];
  /** a candidate model file instead of models/ (null: the shipped one) */
  model: string | null;
  /** print the clip's structure change per transition, frames `stride` apart, instead of playing it */
  structure: boolean;
  stride: number;
  /** depth views added to the plan (a depth or zoom change halfway through a drift view) */
  depth: number;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    small: false,
    split: 'test',
    seeds: [1],
    fps: 15,
    alerts: {},
    gate: {},
    out: null,
    verbose: false,
    dump: null,
    view: 'roi',
    clean: false,
    replay: null,
    grid: [{}],
    ddti: process.env.DDTI_DIR ?? '../shared/datasets/ddti',
    model: null,
    structure: false,
    stride: 1,
    depth: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k}: needs a value`);
      return x;
    };
    if (k === '--small') a.small = true;
    else if (k === '--split') {
      const s = v();
      if (s !== 'val' && s !== 'test') throw new Error('--split: val or test');
      a.split = s;
    } else if (k === '--seed') a.seeds = [Number(v())];
    else if (k === '--seeds') a.seeds = parseIntList(v(), '--seeds');
    else if (k === '--fps') a.fps = Number(v());
    else if (k === '--alerts') a.alerts = JSON.parse(v()) as Record<string, unknown>;
    else if (k === '--gate') a.gate = JSON.parse(v()) as Record<string, unknown>;
    else if (k === '--out') a.out = v();
    else if (k === '--ddti') a.ddti = v();
    else if (k === '--model') a.model = resolve(v());
    else if (k === '--verbose') a.verbose = true;
    else if (k === '--dump') a.dump = v();
    else if (k === '--clean') a.clean = true;
    else if (k === '--view') {
      const x = v();
      if (x !== 'roi' && x !== 'screen') throw new Error('--view: roi or screen');
      a.view = x;
    } else if (k === '--replay') a.replay = v();
    else if (k === '--grid') a.grid = JSON.parse(v()) as Record<string, unknown>[];
    else if (k === '--structure') a.structure = true;
    else if (k === '--stride') a.stride = Number(v());
    else if (k === '--depth') {
      a.depth = Number(v());
      if (!Number.isInteger(a.depth) || a.depth < 0) throw new Error('--depth: a number of depth views (0 or more)');
    } else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

interface Played {
  results: Map<number, ResultPayload>;
  alerts: AlertPayload[];
  wallS: number;
}

/** The daemon as `thyroid-edge run` with a file source, against a real mosquitto. */
async function play(v: ScanVideo, a: Args, dir: string): Promise<Played> {
  const broker = await Mosquitto.start(join(dir, 'mq'));
  const base = 'thyroid-edge/bench';
  const sub = mqtt.connect(broker.url, { protocolVersion: 5 });
  const results = new Map<number, ResultPayload>();
  const alerts: AlertPayload[] = [];
  let lastResultAt = Date.now();
  sub.on('message', (topic, payload) => {
    if (topic.endsWith('/result')) {
      const r = JSON.parse(payload.toString()) as ResultPayload;
      results.set(r.seq, r);
      lastResultAt = Date.now();
    } else if (topic.endsWith('/alert')) {
      const al = JSON.parse(payload.toString()) as AlertPayload;
      if (!alerts.some((x) => x.messageId === al.messageId)) alerts.push(al);
    }
  });
  await new Promise<void>((r, j) => {
    sub.once('connect', () => r());
    sub.once('error', j);
  });
  await sub.subscribeAsync([`${base}/result`, `${base}/alert`], { qos: 1 });
  const config = {
    deviceId: 'bench',
    logLevel: 'warn',
    stateDir: join(dir, 'state'),
    capture: {
      source: 'file',
      roi: { x: 0, y: 0, width: v.width, height: v.height },
      file: { path: v.path, width: v.width, height: v.height, realtime: true, loop: false },
    },
    mqtt: { url: broker.url },
    ...(a.model ? { model: { path: a.model } } : {}),
    alerts: a.alerts,
    imagingGate: a.gate,
  };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config));
  const t0 = Date.now();
  const proc = spawn(process.execPath, ['dist/src/cli.js', 'run', '--config', join(dir, 'config.json')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const duration = v.frames.length / v.fps;
  // played in real time: wait for the clip, then until results stop coming
  for (;;) {
    await new Promise((r) => setTimeout(r, 500));
    if (proc.exitCode !== null) throw new Error(`daemon exited early (${proc.exitCode}): ${stderr}`);
    const elapsed = (Date.now() - t0) / 1000;
    if (elapsed > duration + 120) break;
    if (elapsed > duration && Date.now() - lastResultAt > 4000) break;
  }
  const wallS = (Date.now() - t0) / 1000;
  proc.kill('SIGTERM');
  await exited;
  await new Promise((r) => setTimeout(r, 1500)); // the shutdown clears on their way
  await sub.endAsync();
  await broker.stop();
  return { results, alerts, wallS };
}

interface Appearance {
  kind: ClipKind;
  id: string;
  start: number;
  /** first frame of the partly visible run that leads into it: an alert from there on is early, not false */
  early: number;
  end: number;
  maxAreaFraction: number;
  alerts: AlertPayload[];
}

function grow(r: Rect, m: number): Rect {
  return { x: r.x - m, y: r.y - m, width: r.width + 2 * m, height: r.height + 2 * m };
}

function overlaps(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/** Counts over some nodule appearances: sensitivity (all, and of nodules of minAreaFraction), repeats, delays. */
function appearanceCounts(apps: Appearance[], minAreaFraction: number, fps: number): AppearanceCounts {
  const isBig = (x: Appearance) => x.maxAreaFraction >= minAreaFraction;
  const det = apps.filter((x) => x.alerts.length > 0);
  return {
    appearances: apps.length,
    detected: det.length,
    big: apps.filter(isBig).length,
    bigDetected: det.filter(isBig).length,
    alertsOnDetected: det.reduce((s, x) => s + x.alerts.length, 0),
    ttfaS: det.map((x) => Math.max(0, x.alerts[0]!.frameSeq - 1 - x.start) / fps),
  };
}

export interface Scores {
  rows: string[];
  headline: Headline & { resultsReceived: number; frames: number };
  tally: Tally;
}

function score(v: ScanVideo, p: Played, minAreaFraction: number, verbose = false): Scores {
  const F = v.frames;
  const truthAt = (seq: number): FrameTruth | undefined => F[seq - 1];
  // appearances: runs of frames with the nodule on screen while imaging
  const apps: Appearance[] = [];
  let cur: Appearance | null = null;
  F.forEach((f, i) => {
    const on = f.imaging && f.nodule !== null;
    if (on && cur && cur.end === i - 1 && cur.id === f.nodule!.id) {
      cur.end = i;
      cur.maxAreaFraction = Math.max(cur.maxAreaFraction, f.nodule!.areaFraction);
    } else if (on) {
      let early = i;
      while (
        early > 0 &&
        F[early - 1]!.imaging &&
        F[early - 1]!.partial?.id === f.nodule!.id &&
        F[early - 1]!.segment === f.segment
      )
        early--;
      cur = {
        kind: f.kind,
        id: f.nodule!.id,
        start: i,
        early,
        end: i,
        maxAreaFraction: f.nodule!.areaFraction,
        alerts: [],
      };
      apps.push(cur);
    }
  });
  const margin = 20; // screen px around the truth box
  const falseBy = new Map<string, number>();
  const detected = p.alerts.filter((a) => a.event === 'nodule_detected');
  for (const a of detected) {
    const t = truthAt(a.frameSeq);
    const app = apps.find((x) => a.frameSeq - 1 >= x.early && a.frameSeq - 1 <= x.end);
    const seen = t?.nodule ?? t?.partial;
    if (t && app && seen && overlaps(a.bbox, grow(seen.bbox, margin))) app.alerts.push(a);
    else {
      const k = !t
        ? 'after'
        : showsNodule(t.kind)
          ? t.partial
            ? 'nodule clip, elsewhere'
            : 'nodule clip, nodule out of view'
          : t.kind;
      falseBy.set(k, (falseBy.get(k) ?? 0) + 1);
    }
  }
  if (verbose) {
    for (const x of apps)
      console.error(
        `appearance ${x.kind} ${x.id} frames (${x.early}) ${x.start}-${x.end}:`,
        x.alerts.map((a) => `#${a.trackId}@${a.frameSeq - 1}`).join(' ') || 'no alert',
      );
    for (const a of p.alerts) {
      const t = truthAt(a.frameSeq);
      const box = (b: Rect) => [b.x, b.y, b.width, b.height].map((z) => z.toFixed(0)).join(',');
      console.error(
        `${a.event} #${a.trackId} frame ${a.frameSeq - 1} ${t?.kind ?? '?'} seg ${t?.segment} ${a.reason ?? ''}`,
        `box ${box(a.bbox)} truth ${t?.nodule ? box(t.nodule.bbox) : '-'}`,
      );
    }
  }
  const minutesOf = (pred: (f: FrameTruth) => boolean) => F.filter(pred).length / v.fps / 60;
  const kinds: ClipKind[] = ['pan', 'drift', 'cut', 'depth', 'tissue', 'lifted', 'frozen'];
  const frameStats = (pred: (f: FrameTruth) => boolean) => {
    let pos = 0,
      tp = 0,
      neg = 0,
      tn = 0,
      gateOff = 0,
      n = 0;
    F.forEach((f, i) => {
      if (!pred(f)) return;
      const r = p.results.get(i + 1);
      if (!r) return;
      n++;
      if (!r.imaging) gateOff++;
      if (f.nodule && f.imaging) {
        pos++;
        if (r.nodules.some((nd) => overlaps(nd.capture.bbox, grow(f.nodule!.bbox, margin)))) tp++;
      } else {
        neg++;
        if (r.nodules.length === 0) tn++;
      }
    });
    return {
      n,
      pos,
      tp,
      neg,
      tn,
      sens: pos ? tp / pos : null,
      spec: neg ? tn / neg : null,
      gateOff: n ? gateOff / n : null,
    };
  };
  const f2 = (x: number | null, d = 2) => (x === null ? '–' : x.toFixed(d));
  const rows: string[] = [];
  const columns = [
    'clip kind',
    'minutes',
    'nodule appearances',
    'sensitivity (all / ≥0.3 %)',
    'alerts per detected nodule',
    'time to first alert median / p90 (s)',
    'false alerts',
    'false alerts/min',
    'nodule_updated/min',
    'frames scored',
    'frame sensitivity',
    'frame specificity',
    'gate: no imaging',
  ];
  rows.push(tableRow(columns));
  rows.push(tableRow(columns.map(() => '---')));
  const allApps = apps;
  for (const k of kinds) {
    // depth views only where the plan has them (`--depth N`): the other reports keep their rows
    if (k === 'depth' && !v.frames.some((f) => f.kind === 'depth')) continue;
    const c = appearanceCounts(
      allApps.filter((x) => x.kind === k),
      minAreaFraction,
      v.fps,
    );
    const a = appearanceFigures(c);
    const mins = minutesOf((f) => f.kind === k);
    const falseK = [...falseBy.entries()]
      .filter(([key]) => (showsNodule(k) ? false : key === k))
      .reduce((s, [, n]) => s + n, 0);
    const updated = p.alerts.filter((a) => a.event === 'nodule_updated' && truthAt(a.frameSeq)?.kind === k).length;
    const fs = frameStats((f) => f.kind === k);
    const nodulish = showsNodule(k);
    rows.push(
      tableRow([
        k,
        mins.toFixed(2),
        nodulish ? c.appearances : '–',
        nodulish ? `${f2(a.sensitivityAll)} / ${f2(a.sensitivityBig)} (${c.bigDetected}/${c.big})` : '–',
        nodulish ? f2(a.alertsPerDetected) : '–',
        nodulish ? `${f2(a.ttfaMedian)} / ${f2(a.ttfaP90)}` : '–',
        nodulish ? '–' : falseK,
        nodulish ? '–' : f2(mins ? falseK / mins : null),
        f2(mins ? updated / mins : null),
        fs.n,
        f2(fs.sens),
        f2(fs.spec),
        f2(fs.gateOff),
      ]),
    );
  }
  const fsN = frameStats((f) => showsNodule(f.kind) || f.kind === 'tissue');
  const tally: Tally = {
    ...appearanceCounts(allApps, minAreaFraction, v.fps),
    tissueMin: minutesOf((f) => f.kind === 'tissue'),
    falseTissue: falseBy.get('tissue') ?? 0,
    liftedFrozen: (falseBy.get('lifted') ?? 0) + (falseBy.get('frozen') ?? 0),
    updated: p.alerts.filter((a) => a.event === 'nodule_updated').length,
    minutes: F.length / v.fps / 60,
    framePos: fsN.pos,
    frameTp: fsN.tp,
    frameNeg: fsN.neg,
    frameTn: fsN.tn,
    falseOnNoduleClips:
      (falseBy.get('nodule clip, elsewhere') ?? 0) + (falseBy.get('nodule clip, nodule out of view') ?? 0),
  };
  const headline = { ...headlineOf(tally), resultsReceived: p.results.size, frames: F.length };
  const clearReasons = new Map<string, number>();
  for (const a of p.alerts)
    if (a.event === 'nodule_cleared') clearReasons.set(a.reason ?? '?', (clearReasons.get(a.reason ?? '?') ?? 0) + 1);
  rows.push('');
  const awayMin = f2(minutesOf((f) => showsNodule(f.kind) && !f.nodule));
  rows.push(
    `False alerts on nodule clips: ${falseBy.get('nodule clip, elsewhere') ?? 0} away from the nodule while it was ` +
      `on screen, ${falseBy.get('nodule clip, nodule out of view') ?? 0} while it was out of view ` +
      `(${awayMin} min of such views).`,
  );
  const count = (e: string) => p.alerts.filter((a) => a.event === e).length;
  const reasons = [...clearReasons.entries()].map(([k, n]) => `${k} ${n}`).join(', ');
  rows.push(
    `Events: ${detected.length} nodule_detected, ${count('nodule_updated')} nodule_updated, ` +
      `${count('nodule_cleared')} nodule_cleared (${reasons}). Results received: ${p.results.size} of ${F.length} ` +
      'frames (the rest were dropped by latest-frame-wins or QoS 0).',
  );
  return { rows, headline, tally };
}

/** Where a reportable run's text goes in `--out`: one block per framing, one for several seeds pooled. */
function markerTag(view: ClipView, pooled: boolean): string {
  return `bench:alerts${view === 'roi' ? '' : ' screen'}${pooled ? ' seeds' : ''}`;
}

/** Replace the text between `<!-- tag begin -->` and `<!-- tag end -->` in `file` (made if absent). */
function writeBlock(file: string, tag: string, text: string): void {
  const begin = `<!-- ${tag} begin -->`;
  const endM = `<!-- ${tag} end -->`;
  const doc = existsSync(file) ? readFileSync(file, 'utf8') : `# Alerts\n\n${begin}\n${endM}\n`;
  const i = doc.indexOf(begin);
  const j = doc.indexOf(endM);
  if (i < 0 || j < i) throw new Error(`${file}: markers ${begin} / ${endM} not found`);
  writeFileSync(file, `${doc.slice(0, i + begin.length)}\n${text}\n${doc.slice(j)}`);
  console.log(`\nwritten to ${file}`);
}

/** The headline figures against the issue's targets. */
function headlineRows(h: Headline): string[] {
  return [
    '| headline | value | target |',
    '| --- | --- | --- |',
    `| sensitivity, nodules ≥ 0.3 % of the imaging area | ${fmt(h.sensitivityBig)} | ≥ 0.90 |`,
    `| alerts per detected nodule | ${fmt(h.alertsPerDetected)} | ≤ 1.2 |`,
    `| false alerts/min, tissue without a nodule | ${fmt(h.falsePerMinTissue)} | ≤ 1 |`,
    `| alerts during probe-lifted and frozen intervals | ${h.alertsLiftedFrozen} | 0 |`,
    tableRow(['time to first alert, median / p90 (s)', `${fmt(h.ttfaMedian)} / ${fmt(h.ttfaP90)}`, 'median ≤ 0.5']),
    `| nodule_updated/min (whole clip) | ${fmt(h.updatedPerMin)} | |`,
    tableRow([
      'model per frame (tissue frames): sensitivity / specificity',
      `${fmt(h.frameSensitivity)} / ${fmt(h.frameSpecificity)}`,
      '',
    ]),
  ];
}

/** One row of the pooled report: a seed's counts (or all of them) and its headline figures. */
function seedRow(label: string, t: Tally): string {
  const h = headlineOf(t);
  return tableRow([
    label,
    t.minutes.toFixed(2),
    `${fmt(h.sensitivityBig)} (${t.bigDetected}/${t.big})`,
    `${fmt(h.alertsPerDetected)} (${t.alertsOnDetected}/${t.detected})`,
    `${fmt(h.falsePerMinTissue)} (${t.falseTissue} in ${t.tissueMin.toFixed(2)} min)`,
    h.alertsLiftedFrozen,
    `${fmt(h.ttfaMedian)} / ${fmt(h.ttfaP90)}`,
    `${fmt(h.frameSensitivity)} / ${fmt(h.frameSpecificity)}`,
  ]);
}

/** Several clip sets: a row per seed, then all of them pooled (counts added, ratios taken once). */
function pooledReport(a: Args, tallies: Map<number, Tally>, modelLine: string): string {
  const columns = [
    'clips',
    'minutes',
    'sensitivity ≥ 0.3 % (detected/appearances)',
    'alerts per detected nodule (alerts/detected)',
    'false alerts/min on tissue',
    'alerts, lifted + frozen',
    'time to first alert median / p90 (s)',
    'model per frame: sensitivity / specificity',
  ];
  const pooled = addTallies([...tallies.values()]);
  const seeds = [...tallies.keys()];
  return [
    `Produced by \`node dist/bench/alerts-bench.js ${process.argv.slice(2).join(' ')}\` on ` +
      `${new Date().toISOString()}, ${os.cpus().length} cores, node ${process.version}.`,
    '',
    `- Clips: DDTI \`${a.split}\` frames, seeds ${seeds.join(', ')}, framing **${a.view}**; each seed's clip set as ` +
      'in the single-seed report (its own frames, order and plan), played one after another.',
    `- ${modelLine}`,
    '- Pooled: the counts of all seeds added, then each ratio taken once (the time-to-alert percentiles over all ' +
      'detected appearances).',
    '',
    tableRow(columns),
    tableRow(columns.map(() => '---')),
    ...seeds.map((seed) => seedRow(`seed ${seed}`, tallies.get(seed) as Tally)),
    seedRow(`**all ${seeds.length} pooled**`, pooled),
    '',
    ...headlineRows(headlineOf(pooled)),
  ].join('\n');
}

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  if (!existsSync(join(a.ddti, 'split.json'))) {
    console.log(
      `bench:alerts skipped: ${resolve(a.ddti)} (DDTI with split.json) is absent; it needs ../shared/datasets/ddti`,
    );
    return;
  }
  if (a.seeds.length > 1 && (a.structure || a.replay || a.dump)) {
    throw new Error('--structure, --replay and --dump take one seed (--seed N)');
  }
  // the card the daemon will read for this model, found the daemon's way
  const card = await loadModelCard(modelCardPath(validateConfig(a.model ? { model: { path: a.model } } : {})));
  const withOverrides = (o: Record<string, unknown>) => (Object.keys(o).length ? ` with ${JSON.stringify(o)}` : '');
  const modelLine =
    `Model: \`${card.name}\` sha256 ${card.sha256.slice(0, 12)}…, threshold ${card.threshold} (from its card). ` +
    `Alerts config: defaults${withOverrides(a.alerts)}; imaging gate: defaults${withOverrides(a.gate)}.`;
  const reportable =
    !a.small &&
    !a.clean &&
    a.split === 'test' &&
    Object.keys(a.alerts).length === 0 &&
    Object.keys(a.gate).length === 0;
  const tallies = new Map<number, Tally>();
  for (const seed of a.seeds) {
    const dir = await mkdtemp(join(tmpdir(), 'te-alerts-bench-'));
    try {
      const t0 = Date.now();
      const plan = { ...(a.small ? SMALL_PLAN : FULL_PLAN), depth: a.depth };
      const v = await makeScanVideo({
        ddti: a.ddti,
        split: a.split,
        seed,
        plan,
        fps: a.fps,
        dir,
        view: a.view,
        clean: a.clean,
      });
      const makeS = (Date.now() - t0) / 1000;
      if (a.structure) {
        console.log(clipStructure(v, a.stride).join('\n'));
        return;
      }
      if (a.replay) {
        replay(v, a, JSON.parse(readFileSync(a.replay, 'utf8')) as Dump);
        return;
      }
      const played = await play(v, a, dir);
      if (a.dump) {
        const dump: Dump = {
          split: a.split,
          seed,
          small: a.small,
          view: a.view,
          results: [...played.results.values()],
          alerts: played.alerts,
        };
        writeFileSync(a.dump, JSON.stringify(dump));
      }
      const s = score(v, played, 0.003, a.verbose);
      tallies.set(seed, s.tally);
      const segs = v.segments.filter((x) => x.kind !== 'lifted');
      const argv = process.argv.slice(2).join(' ');
      const framing =
        a.view === 'roi'
          ? 'the imaging area alone, as a calibrated box sees it'
          : 'the whole screen with margins and overlays';
      const text = [
        `Produced by \`node dist/bench/alerts-bench.js${argv ? ` ${argv}` : ''}\` on ${new Date().toISOString()}, ` +
          `${os.cpus().length} cores, node ${process.version}.`,
        '',
        `- Clips: DDTI \`${a.split}\` frames, seed **${seed}**, ${a.small ? 'small' : 'full'} plan ` +
          `${JSON.stringify(plan)}, framing **${a.view}** (${framing}), ${v.fps} fps, ${v.width}x${v.height}, ` +
          `${(v.frames.length / v.fps).toFixed(0)} s in all (${v.frames.length} frames; made and encoded in ` +
          `${makeS.toFixed(0)} s, played in ${played.wallS.toFixed(0)} s).`,
        `- Segments (kind:image): ${segs.map((x) => `${x.kind}:${x.image}`).join(', ')}; ` +
          `a lifted probe (${plan.liftedS} s) before each but the cuts, and at the end.`,
        `- ${modelLine}`,
        '',
        ...s.rows,
        '',
        ...headlineRows(s.headline),
      ].join('\n');
      console.log(text);
      if (a.seeds.length === 1 && a.out) {
        if (reportable) writeBlock(a.out, markerTag(a.view, false), text);
        else console.log(`\nnot written to ${a.out}: it reports the full test run with the defaults`);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  if (a.seeds.length > 1) {
    const text = pooledReport(a, tallies, modelLine);
    console.log(`\n${text}`);
    if (a.out) {
      if (reportable) writeBlock(a.out, markerTag(a.view, true), text);
      else console.log(`\nnot written to ${a.out}: it reports the full test run with the defaults`);
    }
  }
}

interface Dump {
  split: string;
  seed: number;
  small: boolean;
  view: ClipView;
  results: ResultPayload[];
  alerts: AlertPayload[];
}

/** The tracker offline over a dumped run's results, once per config of the grid: one headline line each. */
function replay(v: ScanVideo, a: Args, d: Dump): void {
  if (d.split !== a.split || d.seed !== a.seeds[0] || d.small !== a.small || d.view !== a.view) {
    throw new Error(
      `--replay: the dump is of ${d.split} seed ${d.seed}${d.small ? ' small' : ''} (${d.view}); ` +
        'pass the same --split/--seed/--small/--view',
    );
  }
  const results = [...d.results].sort((x, y) => x.seq - y.seq);
  const columns = [
    'alerts config',
    'sensitivity ≥0.3 %',
    'alerts per detected',
    'false/min tissue',
    'lifted+frozen',
    'ttfa median / p90',
    'updated/min',
  ];
  console.log(tableRow(columns));
  console.log(tableRow(columns.map(() => '---')));
  for (const partial of a.grid) {
    let id = 0;
    const tracker = new AlertTracker({ ...DEFAULT_TRACKER, ...partial } as typeof DEFAULT_TRACKER, () => ++id);
    const events: AlertEvent[] = [];
    for (const r of results) {
      events.push(
        ...tracker.update({
          seq: r.seq,
          capturedAt: r.capturedAt,
          width: r.width,
          height: r.height,
          nodules: r.nodules,
          imaging: r.imaging,
          frameOk: r.imaging,
          viewChanged: r.viewChanged ?? false, // dumps made before results carried it
        }),
      );
    }
    const alerts = events.map((e) => ({ ...e, messageId: '', deviceId: 'bench', time: 0 }) as unknown as AlertPayload);
    const h = score(
      v,
      { results: new Map(results.map((r) => [r.seq, r])), alerts, wallS: 0 },
      0.003,
      a.verbose,
    ).headline;
    console.log(
      tableRow([
        JSON.stringify(partial),
        fmt(h.sensitivityBig),
        fmt(h.alertsPerDetected),
        fmt(h.falsePerMinTissue),
        h.alertsLiftedFrozen ?? '–',
        `${fmt(h.ttfaMedian)} / ${fmt(h.ttfaP90)}`,
        fmt(h.updatedPerMin),
      ]),
    );
  }
}

/** A markdown table row. */
function tableRow(cells: readonly (string | number)[]): string {
  return `| ${cells.join(' | ')} |`;
}

function fmt(x: number | null | undefined): string {
  return x === null || x === undefined ? '–' : x.toFixed(2);
}

main().catch((err: unknown) => {
  console.error((err as Error).stack ?? err);
  process.exit(1);
});
