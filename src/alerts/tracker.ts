/**
 * Nodule tracks over time, and the alert events they raise. Pure logic: feed frames in order (with
 * their capture time and the imaging gate's verdict), get events back; no I/O, no clocks.
 *
 * - Fragments: components of one nodule a few pixels apart, or one touching another's box grown by a
 *   fraction of its size, are merged into one detection before anything else (a nodule split by a
 *   dark core is one nodule; a big nodule the model outlines in two parts is one nodule).
 * - Association: box overlap first (IoU, or half the overlap over the smaller box, so a part of a big
 *   nodule outlined alone continues its track; greedy, best first), then centroid distance as a
 *   fallback for small or fast-moving nodules whose boxes no longer overlap.
 * - Confirmation: evidence is probability-weighted time on screen (seconds x peak probability),
 *   leaking away while the track is not seen; a track is confirmed (nodule_detected) once its
 *   evidence reaches confirmEvidenceS and it has been seen over at least minDurationS, unless it lies
 *   mostly inside a confirmed track's box (a part of a nodule already announced). Stray false
 *   positives rarely build evidence; a real nodule does within a few frames.
 * - Continuity: a confirmed track survives absences up to memoryS (a nodule that slides out of view
 *   and back keeps its id); after that it is cleared (reason `lost`).
 * - nodule_updated: when the area grew by growthFraction since the last event, at most once per
 *   updateMinIntervalS.
 * - No imaging (the gate): frames that show no tissue are no evidence at all; when the gate turns
 *   to no imaging every open track is cleared once (reason `no_imaging`).
 * - A cut (the gate: another scene replaced the view, not a moving probe): every open track is cleared
 *   (reason `view_changed`), so a nodule of the new scene is not taken for one of the old.
 */
import type { Nodule } from '../inference/postprocess.js';

export interface TrackerOptions {
  /** detections smaller than this (model px, after merging fragments) are ignored */
  minAreaPx: number;
  /** fragments closer than this (model px, box to box) are one nodule */
  fragmentGapPx: number;
  /** ... and so are components inside one another's box grown by this fraction of its size on each side */
  fragmentGrowFraction: number;
  /** minimum box IoU to continue a track */
  minIou: number;
  /** fallback: max centroid distance to continue a track, as a fraction of the frame diagonal */
  matchDistance: number;
  /** probability-weighted seconds of presence that confirm a track */
  confirmEvidenceS: number;
  /** a track must have been seen over at least this long (first to last sighting) to be confirmed */
  minDurationS: number;
  /** evidence lost per second while a track is not seen */
  evidenceDecayPerS: number;
  /** how long a track survives without being seen */
  memoryS: number;
  /** nodule_updated when the area grew by this fraction since the last event ... */
  growthFraction: number;
  /** ... and at most once per this many seconds per track */
  updateMinIntervalS: number;
}

/** Defaults (chosen on DDTI val scan clips with `npm run bench:alerts`; docs/alerts.md). */
export const DEFAULT_TRACKER: TrackerOptions = {
  minAreaPx: 80,
  fragmentGapPx: 6,
  fragmentGrowFraction: 1,
  minIou: 0.1,
  matchDistance: 0.4,
  confirmEvidenceS: 0.2,
  minDurationS: 0.25,
  evidenceDecayPerS: 1,
  memoryS: 1.5,
  growthFraction: 0.25,
  updateMinIntervalS: 2,
};

export type AlertEventType = 'nodule_detected' | 'nodule_updated' | 'nodule_cleared';
/** Why a track was cleared: one list for the tracker and the alert payload's schema. */
export const CLEAR_REASONS = ['lost', 'no_imaging', 'view_changed', 'config_changed', 'shutdown', 'restart'] as const;
export type ClearReason = (typeof CLEAR_REASONS)[number];

type Box = Nodule['bbox'];

export interface AlertEvent {
  event: AlertEventType;
  trackId: number;
  /** nodule_cleared only */
  reason?: ClearReason;
  frameSeq: number;
  peakProb: number;
  largestAreaPx: number;
  largestAreaFraction: number;
  largestAreaMm2: number | null;
  firstSeenAt: number;
  lastSeenAt: number;
  /** latest box and centroid in capture-frame pixels */
  bbox: Box;
  centroid: { x: number; y: number };
}

export interface TrackerFrame {
  seq: number;
  capturedAt: number;
  width: number;
  height: number;
  nodules: Nodule[];
  /** the gate's debounced verdict; false clears open tracks once */
  imaging: boolean;
  /** this frame shows tissue (undebounced); false = no evidence from it */
  frameOk: boolean;
  /** the gate saw a cut to another scene: open tracks end (reason view_changed) before this frame counts */
  viewChanged?: boolean;
}

/** One nodule after merging fragments. */
export interface Detection {
  bbox: Box;
  centroid: { x: number; y: number };
  areaPx: number;
  areaFraction: number;
  areaMm2: number | null;
  maxProb: number;
  capture: Nodule['capture'];
}

/** What a confirmed track is, for persistence (open tracks survive a crash as a list to clear). */
export interface OpenTrack {
  trackId: number;
  firstSeenAt: number;
  lastSeenAt: number;
  peakProb: number;
  largestAreaPx: number;
  largestAreaFraction: number;
  largestAreaMm2: number | null;
  bbox: Box;
  centroid: { x: number; y: number };
  frameSeq: number;
}

interface Track {
  /** 0 until confirmed; then the public id */
  id: number;
  evidence: number;
  box: Box;
  /** its boxes of the last second or so: a big nodule outlined differently frame to frame spans them */
  recent: Box[];
  cx: number;
  cy: number;
  firstSeenAt: number;
  lastSeenAt: number;
  lastFrameAt: number;
  peakProb: number;
  largestAreaPx: number;
  largestAreaFraction: number;
  largestAreaMm2: number | null;
  areaAtLastEvent: number;
  lastEventAt: number;
  last: Detection;
}

export function boxIou(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const inter = ix * iy;
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * How well a detection continues a track: box IoU, or half the overlap over the smaller box, whichever
 * is larger, so a part of a big nodule that the model outlines alone in one frame (inside the track's
 * box) still continues it.
 */
export function overlapScore(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const small = Math.min(a.width * a.height, b.width * b.height);
  return Math.max(boxIou(a, b), small > 0 ? (0.5 * ix * iy) / small : 0);
}

/** Share of box a that lies inside box b. */
function insideShare(a: Box, b: Box): number {
  const ix = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const iy = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  const area = a.width * a.height;
  return area > 0 ? (ix * iy) / area : 0;
}

/** Gap between two boxes (0 when they touch or overlap). */
function boxGap(a: Box, b: Box): number {
  const gx = Math.max(0, Math.max(a.x, b.x) - Math.min(a.x + a.width, b.x + b.width));
  const gy = Math.max(0, Math.max(a.y, b.y) - Math.min(a.y + a.height, b.y + b.height));
  return Math.hypot(gx, gy);
}

function unionBox(a: Box, b: Box): Box {
  const x = Math.min(a.x, b.x);
  const y = Math.min(a.y, b.y);
  return {
    x,
    y,
    width: Math.max(a.x + a.width, b.x + b.width) - x,
    height: Math.max(a.y + a.height, b.y + b.height) - y,
  };
}

function toDetection(n: Nodule): Detection {
  return {
    bbox: n.bbox,
    centroid: n.centroid,
    areaPx: n.areaPx,
    areaFraction: n.areaFraction,
    areaMm2: n.areaMm2,
    maxProb: n.maxProb,
    capture: n.capture,
  };
}

function merge(a: Detection, b: Detection): Detection {
  const area = a.areaPx + b.areaPx;
  const wa = a.areaPx / area;
  const wb = b.areaPx / area;
  return {
    bbox: unionBox(a.bbox, b.bbox),
    centroid: { x: a.centroid.x * wa + b.centroid.x * wb, y: a.centroid.y * wa + b.centroid.y * wb },
    areaPx: area,
    areaFraction: a.areaFraction + b.areaFraction,
    areaMm2: a.areaMm2 !== null && b.areaMm2 !== null ? a.areaMm2 + b.areaMm2 : null,
    maxProb: Math.max(a.maxProb, b.maxProb),
    capture: {
      bbox: unionBox(a.capture.bbox, b.capture.bbox),
      centroid: {
        x: a.capture.centroid.x * wa + b.capture.centroid.x * wb,
        y: a.capture.centroid.y * wa + b.capture.centroid.y * wb,
      },
    },
  };
}

function grown(b: Box, f: number): Box {
  return { x: b.x - b.width * f, y: b.y - b.height * f, width: b.width * (1 + 2 * f), height: b.height * (1 + 2 * f) };
}

/** One nodule's fragments: a few px apart, or one touching the other's box grown by a fraction of its size. */
export function areFragments(a: Box, b: Box, gapPx: number, growFraction: number): boolean {
  return boxGap(a, b) <= gapPx || boxGap(grown(a, growFraction), b) === 0 || boxGap(a, grown(b, growFraction)) === 0;
}

/**
 * Fragments of one nodule become one detection (see areFragments), transitively, unless `apart`
 * says they belong to different tracks (two nodules passing each other).
 */
export function mergeFragments(
  nodules: Nodule[],
  gapPx: number,
  apart: (a: Detection, b: Detection) => boolean = () => false,
  growFraction = 0,
): Detection[] {
  let dets = nodules.map(toDetection);
  for (let changed = true; changed; ) {
    changed = false;
    outer: for (let i = 0; i < dets.length; i++) {
      for (let j = i + 1; j < dets.length; j++) {
        if (areFragments(dets[i]!.bbox, dets[j]!.bbox, gapPx, growFraction) && !apart(dets[i]!, dets[j]!)) {
          const m = merge(dets[i]!, dets[j]!);
          dets = dets.filter((_, k) => k !== i && k !== j);
          dets.push(m);
          changed = true;
          break outer;
        }
      }
    }
  }
  return dets.sort((a, b) => b.areaPx - a.areaPx);
}

const round = (x: number, k: number) => Math.round(x * k) / k;

export class AlertTracker {
  private tracks: Track[] = [];
  private wasImaging = true;

  /** `nextId` yields public track ids (the service persists it so ids never repeat across restarts). */
  constructor(
    private readonly o: TrackerOptions,
    private readonly nextId: () => number,
  ) {}

  /** Confirmed tracks, for persistence and status. */
  openTracks(seq: number): OpenTrack[] {
    return this.tracks
      .filter((t) => t.id > 0)
      .map((t) => {
        const { event: _e, ...rest } = this.event('nodule_detected', t, seq);
        return rest;
      });
  }

  get activeTracks(): number {
    return this.tracks.filter((t) => t.id > 0).length;
  }

  update(f: TrackerFrame): AlertEvent[] {
    const at = f.capturedAt;
    if (!f.imaging) {
      const ev = this.wasImaging ? this.clearAll(f.seq, 'no_imaging') : [];
      this.wasImaging = false;
      return ev;
    }
    this.wasImaging = true;
    // another scene replaced the view: its regions are other nodules, whatever their place on screen
    const events: AlertEvent[] = f.viewChanged ? this.clearAll(f.seq, 'view_changed') : [];
    if (!f.frameOk) return events; // a frame without tissue (or unchanged) is no evidence either way
    const diag = Math.hypot(f.width, f.height);
    // two components that each continue a different confirmed track are two nodules, however close
    const owner = (d: Detection): Track | null => {
      let best: Track | null = null;
      let bestIou = this.o.minIou;
      for (const t of this.tracks) {
        const iou = t.id > 0 ? overlapScore(t.box, d.bbox) : 0;
        if (iou >= bestIou) [best, bestIou] = [t, iou];
      }
      return best;
    };
    const apart = (a: Detection, b: Detection) => {
      const oa = owner(a);
      const ob = owner(b);
      return oa !== null && ob !== null && oa !== ob;
    };
    const dets = mergeFragments(f.nodules, this.o.fragmentGapPx, apart, this.o.fragmentGrowFraction).filter(
      (d) => d.areaPx >= this.o.minAreaPx,
    );
    const matchedTracks = new Set<Track>();
    const matchedDets = new Set<Detection>();
    const pairs: { t: Track; d: Detection }[] = [];
    // overlap first: every (track, detection) pair above minIou, best first
    const cand: { t: Track; d: Detection; iou: number }[] = [];
    for (const t of this.tracks)
      for (const d of dets) {
        const iou = overlapScore(t.box, d.bbox);
        if (iou >= this.o.minIou) cand.push({ t, d, iou });
      }
    cand.sort((a, b) => b.iou - a.iou);
    for (const c of cand) {
      if (matchedTracks.has(c.t) || matchedDets.has(c.d)) continue;
      matchedTracks.add(c.t);
      matchedDets.add(c.d);
      pairs.push(c);
    }
    // distance fallback, nearest first; confirmed tracks before candidates
    const dist: { t: Track; d: Detection; dist: number }[] = [];
    for (const t of this.tracks) {
      if (matchedTracks.has(t)) continue;
      for (const d of dets) {
        if (matchedDets.has(d)) continue;
        const dd = Math.hypot(t.cx - d.centroid.x, t.cy - d.centroid.y);
        if (dd <= this.o.matchDistance * diag) dist.push({ t, d, dist: dd - (t.id > 0 ? diag : 0) });
      }
    }
    dist.sort((a, b) => a.dist - b.dist);
    for (const c of dist) {
      if (matchedTracks.has(c.t) || matchedDets.has(c.d)) continue;
      matchedTracks.add(c.t);
      matchedDets.add(c.d);
      pairs.push(c);
    }
    for (const d of dets) {
      if (matchedDets.has(d)) continue;
      const t = this.newTrack(d, at);
      pairs.push({ t, d });
      matchedTracks.add(t);
    }
    for (const { t, d } of pairs) {
      // capped: frames skipped by the gate in between are not time on screen
      const dt = Math.max(0, Math.min(at - t.lastFrameAt, 200)) / 1000;
      // a new track starts with one frame's worth of evidence (a typical frame interval: 1/15 s)
      t.evidence += (t.lastFrameAt === at ? 1 / 15 : dt) * d.maxProb;
      this.observe(t, d, at);
    }
    const keep: Track[] = [];
    for (const t of this.tracks) {
      if (!matchedTracks.has(t)) {
        const dt = Math.max(0, at - t.lastFrameAt) / 1000;
        t.evidence = Math.max(0, t.evidence - dt * this.o.evidenceDecayPerS);
      }
      t.lastFrameAt = at;
      const present = matchedTracks.has(t);
      if (t.id === 0) {
        // a region mostly inside a confirmed track's box is a part of that nodule, not a new one
        const partOfKnown = this.tracks.some(
          (c) => c.id > 0 && c !== t && insideShare(t.box, c.recent.reduce(unionBox)) >= 0.5,
        );
        if (
          present &&
          !partOfKnown &&
          t.evidence >= this.o.confirmEvidenceS &&
          (t.lastSeenAt - t.firstSeenAt) / 1000 >= this.o.minDurationS
        ) {
          t.id = this.nextId();
          t.areaAtLastEvent = t.largestAreaPx;
          t.lastEventAt = at;
          events.push(this.event('nodule_detected', t, f.seq));
        }
        // a candidate that stopped building evidence is forgotten
        if ((at - t.lastSeenAt) / 1000 > this.o.memoryS || (t.evidence <= 0 && !present)) continue;
      } else {
        if ((at - t.lastSeenAt) / 1000 > this.o.memoryS) {
          events.push(this.event('nodule_cleared', t, f.seq, 'lost'));
          continue;
        }
        if (
          present &&
          t.last.areaPx >= t.areaAtLastEvent * (1 + this.o.growthFraction) &&
          (at - t.lastEventAt) / 1000 >= this.o.updateMinIntervalS
        ) {
          t.areaAtLastEvent = t.last.areaPx;
          t.lastEventAt = at;
          events.push(this.event('nodule_updated', t, f.seq));
        }
      }
      keep.push(t);
    }
    this.tracks = keep;
    return events;
  }

  /** Events that close every confirmed track; the tracker is empty afterwards. */
  clearAll(seq: number, reason: ClearReason): AlertEvent[] {
    const ev = this.tracks.filter((t) => t.id > 0).map((t) => this.event('nodule_cleared', t, seq, reason));
    this.tracks = [];
    return ev;
  }

  private newTrack(d: Detection, at: number): Track {
    const t: Track = {
      id: 0,
      evidence: 0,
      box: d.bbox,
      recent: [],
      cx: d.centroid.x,
      cy: d.centroid.y,
      firstSeenAt: at,
      lastSeenAt: at,
      lastFrameAt: at,
      peakProb: 0,
      largestAreaPx: 0,
      largestAreaFraction: 0,
      largestAreaMm2: null,
      areaAtLastEvent: 0,
      lastEventAt: at,
      last: d,
    };
    this.tracks.push(t);
    return t;
  }

  private observe(t: Track, d: Detection, at: number): void {
    t.box = d.bbox;
    t.recent.push(d.bbox);
    if (t.recent.length > 15) t.recent.shift();
    t.cx = d.centroid.x;
    t.cy = d.centroid.y;
    t.peakProb = Math.max(t.peakProb, d.maxProb);
    if (d.areaPx > t.largestAreaPx) {
      t.largestAreaPx = d.areaPx;
      t.largestAreaFraction = d.areaFraction;
      t.largestAreaMm2 = d.areaMm2;
    }
    t.lastSeenAt = at;
    t.last = d;
  }

  private event(type: AlertEventType, t: Track, seq: number, reason?: ClearReason): AlertEvent {
    return {
      event: type,
      trackId: t.id,
      ...(reason ? { reason } : {}),
      frameSeq: seq,
      peakProb: round(t.peakProb, 1e4),
      largestAreaPx: t.largestAreaPx,
      largestAreaFraction: round(t.largestAreaFraction, 1e6),
      largestAreaMm2: t.largestAreaMm2,
      firstSeenAt: t.firstSeenAt,
      lastSeenAt: t.lastSeenAt,
      bbox: t.last.capture.bbox,
      centroid: t.last.capture.centroid,
    };
  }
}
