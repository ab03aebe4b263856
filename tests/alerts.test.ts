/** The alert tracker as pure logic: fragments, confirmation on evidence, short absences, crossing nodules, the gate. */
import { describe, expect, it } from 'vitest';
import {
  AlertTracker,
  DEFAULT_TRACKER,
  mergeFragments,
  type AlertEvent,
  type TrackerOptions,
} from '../src/alerts/tracker.js';
import type { Nodule } from '../src/inference/postprocess.js';
import { mulberry32 } from '../src/capture/phantom.js';

const FPS = 15;
const DT = 1000 / FPS;

function box(x0: number, y0: number, w: number, h: number, prob = 0.9): Nodule {
  const bbox = { x: x0, y: y0, width: w, height: h };
  const centroid = { x: x0 + w / 2, y: y0 + h / 2 };
  const area = Math.round(w * h * 0.78);
  return {
    id: 1,
    bbox,
    centroid,
    areaPx: area,
    areaFraction: area / 65536,
    areaMm2: null,
    meanProb: prob - 0.1,
    maxProb: prob,
    capture: { bbox, centroid },
  };
}

const disc = (x: number, y: number, r: number, prob = 0.9) => box(x - r, y - r, 2 * r, 2 * r, prob);

interface Frame {
  nodules: Nodule[];
  imaging?: boolean;
  frameOk?: boolean;
  viewChanged?: boolean;
}

function tracker(o: Partial<TrackerOptions> = {}, firstId = 1): AlertTracker {
  let next = firstId;
  return new AlertTracker({ ...DEFAULT_TRACKER, ...o }, () => next++);
}

function run(t: AlertTracker, frames: Frame[], startSeq = 1): AlertEvent[] {
  return frames.flatMap((f, i) =>
    t.update({
      seq: startSeq + i,
      capturedAt: 1_000_000 + (startSeq + i) * DT,
      width: 256,
      height: 256,
      nodules: f.nodules,
      imaging: f.imaging ?? true,
      frameOk: f.frameOk ?? true,
      viewChanged: f.viewChanged ?? false,
    }),
  );
}

const repeat = (n: number, f: () => Frame): Frame[] => Array.from({ length: n }, f);
const kinds = (ev: AlertEvent[]) => ev.map((e) => (e.reason ? `${e.event}:${e.reason}` : e.event));

describe('alert tracker', () => {
  it('confirms a steady nodule within a few frames and clears it after memoryS without it', () => {
    const t = tracker();
    const ev = run(t, [
      ...repeat(30, () => ({ nodules: [disc(100, 100, 15)] })),
      ...repeat(30, () => ({ nodules: [] })),
    ]);
    expect(kinds(ev)).toEqual(['nodule_detected', 'nodule_cleared:lost']);
    // 0.2 s of evidence at p 0.9 and minDurationS 0.25: by the 5th frame; cleared once absent for more than memoryS
    // (1.5 s)
    expect(ev[0]!.frameSeq).toBeLessThanOrEqual(5);
    expect(ev[1]!.frameSeq).toBe(30 + Math.floor(1.5 * FPS) + 1);
    expect(ev[1]!.trackId).toBe(ev[0]!.trackId);
  });

  it('weighs evidence by probability: a faint blob takes longer, a flickering speck never confirms', () => {
    const strong = run(
      tracker(),
      repeat(20, () => ({ nodules: [disc(100, 100, 15, 0.95)] })),
    );
    const faint = run(
      tracker(),
      repeat(20, () => ({ nodules: [disc(100, 100, 15, 0.3)] })),
    );
    expect(faint[0]!.frameSeq).toBeGreaterThan(strong[0]!.frameSeq + 3);
    // seen one frame in three: evidence leaks away faster than it builds
    const flicker = run(
      tracker(),
      Array.from({ length: 90 }, (_, i) => ({ nodules: i % 3 === 0 ? [disc(60, 60, 12, 0.6)] : [] })),
    );
    expect(flicker).toEqual([]);
  });

  it('random isolated false positives raise nothing; a real nodule among them raises one alert', () => {
    const rnd = mulberry32(42);
    const frames: Frame[] = [];
    for (let i = 0; i < 300; i++) {
      const f: Nodule[] = [];
      if (i >= 20 && i < 250 && rnd() < 0.8)
        f.push(disc(128 + (rnd() - 0.5) * 8, 128 + (rnd() - 0.5) * 8, 14 + (rnd() - 0.5) * 2));
      if (rnd() < 0.2) f.push(disc(20 + rnd() * 60, 20 + rnd() * 216, 6 + rnd() * 3, 0.5));
      frames.push({ nodules: f });
    }
    const ev = run(tracker(), frames);
    expect(kinds(ev)).toEqual(['nodule_detected', 'nodule_cleared:lost']);
  });

  it("fragments of one nodule (a few px apart, or one inside the other's box) count as one", () => {
    // a nodule split by a dark core into two halves 3 px apart, plus a speck inside its box
    const halves = () => [box(100, 100, 20, 40), box(123, 100, 20, 40), box(110, 110, 6, 6)];
    expect(mergeFragments(halves(), 6)).toHaveLength(1);
    const merged = mergeFragments(halves(), 6)[0]!;
    expect(merged.bbox).toEqual({ x: 100, y: 100, width: 43, height: 40 });
    const ev = run(
      tracker({ minAreaPx: 20 }),
      repeat(20, () => ({ nodules: halves() })),
    );
    expect(kinds(ev)).toEqual(['nodule_detected']);
    // the halves alternate (one frame the left one, the next the right one, the next both): still one track
    const alt = [box(100, 100, 20, 40), box(123, 100, 20, 40)];
    const ev2 = run(
      tracker({ minAreaPx: 20 }),
      Array.from({ length: 40 }, (_, i) => ({ nodules: i % 3 === 2 ? alt : [alt[i % 3]!] })),
    );
    expect(kinds(ev2)).toEqual(['nodule_detected']);
    // a big nodule outlined in two parts 20 px apart is one; two small nodules 20 px apart are two
    expect(mergeFragments([box(40, 100, 60, 60), box(120, 100, 60, 60)], 6, undefined, 0.35)).toHaveLength(1);
    expect(mergeFragments([box(40, 100, 12, 12), box(72, 100, 12, 12)], 6, undefined, 0.35)).toHaveLength(2);
    // two nodules well apart stay two
    const two = run(
      tracker(),
      repeat(10, () => ({ nodules: [disc(50, 50, 12), disc(200, 200, 12)] })),
    );
    expect(kinds(two)).toEqual(['nodule_detected', 'nodule_detected']);
    expect(new Set(two.map((e) => e.trackId)).size).toBe(2);
  });

  it('a nodule that leaves the view briefly and returns keeps its track; a long absence makes a new one', () => {
    const t = tracker({ memoryS: 1.5 });
    const seen = () => ({ nodules: [disc(40, 120, 14)] });
    const ev = run(t, [...repeat(15, seen), ...repeat(15, () => ({ nodules: [] })), ...repeat(15, seen)]); // 1 s away
    expect(kinds(ev)).toEqual(['nodule_detected']);
    const later = run(t, [...repeat(40, () => ({ nodules: [] })), ...repeat(15, seen)], 46); // 2.7 s away
    expect(kinds(later)).toEqual(['nodule_cleared:lost', 'nodule_detected']);
    expect(later[1]!.trackId).toBe(ev[0]!.trackId + 1);
  });

  it('crossing nodules keep their own tracks', () => {
    const t = tracker();
    const frames: Frame[] = [];
    for (let i = 0; i <= 60; i++) {
      const a = disc(40 + i * 3, 120, 14); // left to right
      const b = disc(220 - i * 3, 132, 14); // right to left, a little lower: the boxes overlap as they pass
      frames.push({ nodules: [a, b] });
    }
    const ev = run(t, frames);
    expect(kinds(ev)).toEqual(['nodule_detected', 'nodule_detected']);
    const idA = ev.find((e) => e.centroid.x < 128)!.trackId;
    const open = t.openTracks(61);
    expect(open).toHaveLength(2);
    expect(open.find((o) => o.trackId === idA)!.centroid.x).toBeGreaterThan(200); // A ended on the right
  });

  it('follows a moving nodule by overlap, and by distance when a jump leaves no overlap', () => {
    const ev = run(
      tracker(),
      Array.from({ length: 40 }, (_, i) => ({ nodules: [disc(40 + i * 4, 128, 12)] })),
    );
    expect(kinds(ev)).toEqual(['nodule_detected']);
    // every third frame missing: boxes 12 px apart do not overlap, the distance fallback links them
    const jumpy = run(
      tracker(),
      Array.from({ length: 40 }, (_, i) => ({ nodules: i % 3 === 1 ? [] : [disc(40 + i * 5, 128, 6)] })),
    );
    expect(kinds(jumpy)).toEqual(['nodule_detected']);
    // a big nodule the model outlines whole in some frames and only in part (inside its box) in others
    const parts = Array.from({ length: 40 }, (_, i) => ({
      nodules: [i % 4 === 3 ? box(150, 60, 40, 30) : box(40, 40, 180, 120)],
    }));
    expect(kinds(run(tracker(), parts))).toEqual(['nodule_detected']);
    // a second region inside a confirmed nodule's box, seen at the same time, is a part of it: no second alert
    const inside = Array.from({ length: 22 }, (_, i) => ({
      nodules: i < 10 ? [box(40, 40, 180, 120)] : [box(40, 40, 180, 50), box(60, 125, 60, 30)],
    }));
    expect(kinds(run(tracker(), inside))).toEqual(['nodule_detected']);
  });

  it('rate-limits nodule_updated', () => {
    // grows every frame, 6 s
    const frames = Array.from({ length: 90 }, (_, i) => ({ nodules: [disc(128, 128, 8 + i * 0.5)] }));
    const ev = run(tracker({ updateMinIntervalS: 2, growthFraction: 0.25 }), frames);
    const upd = ev.filter((e) => e.event === 'nodule_updated');
    expect(upd.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < upd.length; i++)
      expect(upd[i]!.frameSeq - upd[i - 1]!.frameSeq).toBeGreaterThanOrEqual(2 * FPS);
  });

  it('the gate: no imaging clears open tracks once and raises nothing; frames without tissue are no evidence', () => {
    const t = tracker();
    const seen = () => ({ nodules: [disc(100, 100, 15)] });
    const ev = run(t, [
      ...repeat(10, seen),
      // the model fires on dark noise
      ...repeat(30, () => ({ nodules: [disc(100, 100, 15), disc(30, 30, 10)], imaging: false, frameOk: false })),
      // tissue again, gate not yet back
      ...repeat(2, () => ({ nodules: [disc(60, 60, 10)], imaging: false, frameOk: true })),
    ]);
    expect(kinds(ev)).toEqual(['nodule_detected', 'nodule_cleared:no_imaging']);
    // undebounced bad frames inside imaging (frameOk false) neither build nor break a track
    const t2 = tracker();
    const mixed = run(
      t2,
      Array.from({ length: 60 }, (_, i) =>
        i % 2 ? { nodules: [disc(30, 200, 12)], frameOk: false } : { nodules: [] },
      ),
    );
    expect(mixed).toEqual([]);
  });

  it('a cut to another scene (the gate says the view changed) ends open tracks: the next nodule is a new one', () => {
    // one nodule, then straight (no lifted probe) a view of another nodule near the same place
    const first = repeat(20, () => ({ nodules: [disc(100, 100, 20)] }));
    const second = repeat(20, () => ({ nodules: [disc(115, 105, 25)] }));
    const cut = (f: Frame[]) => f.map((x, i) => (i === 0 ? { ...x, viewChanged: true } : x));
    const withCut = run(tracker(), [...first, ...cut(second)]);
    expect(kinds(withCut)).toEqual(['nodule_detected', 'nodule_cleared:view_changed', 'nodule_detected']);
    expect(withCut[1]!.frameSeq).toBe(21);
    expect(withCut[2]!.trackId).not.toBe(withCut[0]!.trackId);
    // without the gate's word the tracker cannot tell: the new nodule overlaps the old track and continues it
    const blind = run(tracker(), [...first, ...second]);
    expect(kinds(blind).filter((k) => k === 'nodule_detected')).toHaveLength(1);
    // a cut while nothing is open, or onto a frame without tissue, raises nothing of its own
    expect(run(tracker(), cut(repeat(3, () => ({ nodules: [], frameOk: false }))))).toEqual([]);
  });

  it('clearAll closes confirmed tracks with its reason; ids come from the given counter', () => {
    const t = tracker({}, 41);
    run(
      t,
      repeat(10, () => ({ nodules: [disc(50, 50, 12), disc(200, 50, 12)] })),
    );
    const ev = t.clearAll(99, 'config_changed');
    expect(ev.map((e) => [e.event, e.reason, e.frameSeq])).toEqual([
      ['nodule_cleared', 'config_changed', 99],
      ['nodule_cleared', 'config_changed', 99],
    ]);
    expect(ev.map((e) => e.trackId).sort()).toEqual([41, 42]);
    expect(t.activeTracks).toBe(0);
  });
});
