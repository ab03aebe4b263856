/**
 * The scan-clip benchmark's headline figures from raw counts. A clip set holds a few dozen nodule appearances
 * and a few minutes of tissue, so one false alert moves a rate by a whole point: several clip sets (seeds) are
 * pooled by adding their counts, then taking the ratios once, not by averaging per-seed ratios. Pure.
 */

/** What one played clip set contributed, before any ratio is taken. */
export interface Tally {
  /** nodule appearances (a run of frames with a nodule on screen while imaging) */
  appearances: number;
  /** appearances with at least one matching nodule_detected */
  detected: number;
  /** appearances of nodules of at least 0.3 % of the imaging area, and those detected */
  big: number;
  bigDetected: number;
  /** nodule_detected alerts matched to appearances (all of them, the repeats included) */
  alertsOnDetected: number;
  /** per detected appearance: seconds from its first frame to its first alert */
  ttfaS: number[];
  /** minutes of tissue without a nodule, and the alerts raised there */
  tissueMin: number;
  falseTissue: number;
  /** alerts while the probe was lifted or the screen frozen */
  liftedFrozen: number;
  /** nodule_updated events over the whole clip, and its length in minutes */
  updated: number;
  minutes: number;
  /** per-frame model figures over nodule and tissue frames: positives, true positives, negatives, true negatives */
  framePos: number;
  frameTp: number;
  frameNeg: number;
  frameTn: number;
  /** alerts on nodule clips away from the nodule */
  falseOnNoduleClips: number;
}

export interface Headline {
  sensitivityBig: number | null;
  sensitivityAll: number | null;
  alertsPerDetected: number | null;
  falsePerMinTissue: number | null;
  alertsLiftedFrozen: number;
  ttfaMedian: number | null;
  ttfaP90: number | null;
  updatedPerMin: number | null;
  frameSensitivity: number | null;
  frameSpecificity: number | null;
  falseOnNoduleClips: number;
}

/** The p-th percentile (nearest rank, lower) of xs; null for none. */
export function pct(xs: readonly number[], p: number): number | null {
  if (!xs.length) return null;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

const ratio = (n: number, d: number): number | null => (d > 0 ? n / d : null);

/** The counts over nodule appearances alone: a clip kind's row uses them as the headline does. */
export type AppearanceCounts = Pick<
  Tally,
  'appearances' | 'detected' | 'big' | 'bigDetected' | 'alertsOnDetected' | 'ttfaS'
>;

export function appearanceFigures(
  t: AppearanceCounts,
): Pick<Headline, 'sensitivityBig' | 'sensitivityAll' | 'alertsPerDetected' | 'ttfaMedian' | 'ttfaP90'> {
  return {
    sensitivityBig: ratio(t.bigDetected, t.big),
    sensitivityAll: ratio(t.detected, t.appearances),
    alertsPerDetected: ratio(t.alertsOnDetected, t.detected),
    ttfaMedian: pct(t.ttfaS, 50),
    ttfaP90: pct(t.ttfaS, 90),
  };
}

export function headlineOf(t: Tally): Headline {
  return {
    ...appearanceFigures(t),
    falsePerMinTissue: ratio(t.falseTissue, t.tissueMin),
    alertsLiftedFrozen: t.liftedFrozen,
    updatedPerMin: ratio(t.updated, t.minutes),
    frameSensitivity: ratio(t.frameTp, t.framePos),
    frameSpecificity: ratio(t.frameTn, t.frameNeg),
    falseOnNoduleClips: t.falseOnNoduleClips,
  };
}

/** Several clip sets as one: counts and minutes add, the time-to-alert samples are joined. */
export function addTallies(ts: readonly Tally[]): Tally {
  const sum = (f: (t: Tally) => number): number => ts.reduce((s, t) => s + f(t), 0);
  return {
    appearances: sum((t) => t.appearances),
    detected: sum((t) => t.detected),
    big: sum((t) => t.big),
    bigDetected: sum((t) => t.bigDetected),
    alertsOnDetected: sum((t) => t.alertsOnDetected),
    ttfaS: ts.flatMap((t) => t.ttfaS),
    tissueMin: sum((t) => t.tissueMin),
    falseTissue: sum((t) => t.falseTissue),
    liftedFrozen: sum((t) => t.liftedFrozen),
    updated: sum((t) => t.updated),
    minutes: sum((t) => t.minutes),
    framePos: sum((t) => t.framePos),
    frameTp: sum((t) => t.frameTp),
    frameNeg: sum((t) => t.frameNeg),
    frameTn: sum((t) => t.frameTn),
    falseOnNoduleClips: sum((t) => t.falseOnNoduleClips),
  };
}
