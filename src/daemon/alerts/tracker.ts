/**
 * Temporal alert state machine over per-frame nodules. A track starts (nodule_detected) once a
 * nodule is present in k of the last n frames; it ends (nodule_cleared) after m consecutive
 * frames without it; nodule_updated when its area grew by growthFraction since the last event.
 * Pure: feed it results in frame order, it returns events. No I/O, no clocks of its own.
 */
import type { Nodule } from '../../inference/postprocess.js';

export interface TrackerOptions {
  k: number;
  n: number;
  m: number;
  minAreaPx: number;
  growthFraction: number;
  /** max centroid distance to continue a track, as a fraction of the frame diagonal */
  matchDistance: number;
}

export type AlertEventType = 'nodule_detected' | 'nodule_updated' | 'nodule_cleared';

export interface AlertEvent {
  event: AlertEventType;
  trackId: number;
  frameSeq: number;
  peakProb: number;
  largestAreaPx: number;
  largestAreaFraction: number;
  largestAreaMm2: number | null;
  firstSeenAt: number;
  lastSeenAt: number;
  /** latest box and centroid in capture-frame pixels */
  bbox: Nodule['capture']['bbox'];
  centroid: Nodule['capture']['centroid'];
}

export interface TrackerFrame {
  seq: number;
  capturedAt: number;
  width: number;
  height: number;
  nodules: Nodule[];
}

interface Track {
  id: number;
  active: boolean;
  history: boolean[]; // last n frames, newest last
  absentRun: number;
  cx: number;
  cy: number;
  peakProb: number;
  largestAreaPx: number;
  largestAreaFraction: number;
  largestAreaMm2: number | null;
  areaAtLastEvent: number;
  firstSeenAt: number;
  lastSeenAt: number;
  last: Nodule;
}

export class AlertTracker {
  private tracks: Track[] = [];
  private nextId = 1;

  constructor(private readonly o: TrackerOptions) {}

  get activeTracks(): number {
    return this.tracks.filter((t) => t.active).length;
  }

  update(f: TrackerFrame): AlertEvent[] {
    const events: AlertEvent[] = [];
    const diag = Math.hypot(f.width, f.height);
    const candidates = f.nodules.filter((nd) => nd.areaPx >= this.o.minAreaPx);
    const matched = new Set<Track>();
    // greedy matching, largest nodules first, to the nearest unmatched track
    for (const nd of [...candidates].sort((a, b) => b.areaPx - a.areaPx)) {
      let best: Track | null = null;
      let bestD = this.o.matchDistance * diag;
      for (const t of this.tracks) {
        if (matched.has(t)) continue;
        const d = Math.hypot(t.cx - nd.centroid.x, t.cy - nd.centroid.y);
        if (d <= bestD) {
          best = t;
          bestD = d;
        }
      }
      const t = best ?? this.newTrack(nd, f.capturedAt);
      matched.add(t);
      this.observe(t, nd, f.capturedAt);
    }
    for (const t of this.tracks) {
      const present = matched.has(t);
      t.history.push(present);
      if (t.history.length > this.o.n) t.history.shift();
      t.absentRun = present ? 0 : t.absentRun + 1;
      const hits = t.history.filter(Boolean).length;
      if (!t.active && hits >= this.o.k) {
        t.active = true;
        t.areaAtLastEvent = t.last.areaPx;
        events.push(this.event('nodule_detected', t, f.seq));
      } else if (t.active && present && t.last.areaPx >= t.areaAtLastEvent * (1 + this.o.growthFraction)) {
        t.areaAtLastEvent = t.last.areaPx;
        events.push(this.event('nodule_updated', t, f.seq));
      } else if (t.active && t.absentRun >= this.o.m) {
        t.active = false;
        events.push(this.event('nodule_cleared', t, f.seq));
      }
    }
    // forget tracks that are neither active nor seen within the window
    this.tracks = this.tracks.filter((t) => t.active || t.history.some(Boolean));
    return events;
  }

  /** Events that close every active track (e.g. on shutdown); the tracker is empty afterwards. */
  clearAll(seq: number): AlertEvent[] {
    const ev = this.tracks.filter((t) => t.active).map((t) => this.event('nodule_cleared', t, seq));
    this.tracks = [];
    return ev;
  }

  private newTrack(nd: Nodule, at: number): Track {
    const t: Track = {
      id: this.nextId++, active: false, history: [], absentRun: 0, cx: nd.centroid.x, cy: nd.centroid.y,
      peakProb: 0, largestAreaPx: 0, largestAreaFraction: 0, largestAreaMm2: null, areaAtLastEvent: 0,
      firstSeenAt: at, lastSeenAt: at, last: nd,
    };
    this.tracks.push(t);
    return t;
  }

  private observe(t: Track, nd: Nodule, at: number): void {
    t.cx = nd.centroid.x;
    t.cy = nd.centroid.y;
    t.peakProb = Math.max(t.peakProb, nd.maxProb);
    if (nd.areaPx > t.largestAreaPx) {
      t.largestAreaPx = nd.areaPx;
      t.largestAreaFraction = nd.areaFraction;
      t.largestAreaMm2 = nd.areaMm2;
    }
    t.lastSeenAt = at;
    t.last = nd;
  }

  private event(type: AlertEventType, t: Track, seq: number): AlertEvent {
    return {
      event: type,
      trackId: t.id,
      frameSeq: seq,
      peakProb: Math.round(t.peakProb * 1e4) / 1e4,
      largestAreaPx: t.largestAreaPx,
      largestAreaFraction: Math.round(t.largestAreaFraction * 1e6) / 1e6,
      largestAreaMm2: t.largestAreaMm2,
      firstSeenAt: t.firstSeenAt,
      lastSeenAt: t.lastSeenAt,
      bbox: t.last.capture.bbox,
      centroid: t.last.capture.centroid,
    };
  }
}
