/** The scan-clip benchmark's pooling of clip sets, as pure logic: counts add, ratios are taken once. */
import { describe, expect, it } from 'vitest';
import { addTallies, headlineOf, pct, type Tally } from '../bench/alert-tally.js';

function tally(over: Partial<Tally>): Tally {
  return {
    appearances: 0,
    detected: 0,
    big: 0,
    bigDetected: 0,
    alertsOnDetected: 0,
    ttfaS: [],
    tissueMin: 0,
    falseTissue: 0,
    liftedFrozen: 0,
    updated: 0,
    minutes: 0,
    framePos: 0,
    frameTp: 0,
    frameNeg: 0,
    frameTn: 0,
    falseOnNoduleClips: 0,
    ...over,
  };
}

describe('alert tally', () => {
  it('pools by adding counts, not by averaging each clip set’s ratios', () => {
    // one false alert in 0.9 min of tissue, none in 3.1 min: 1/4 per minute pooled (the mean of the two rates
    // would be 0.56)
    const a = tally({ tissueMin: 0.9, falseTissue: 1, big: 20, bigDetected: 19, minutes: 3.8 });
    const b = tally({ tissueMin: 3.1, falseTissue: 0, big: 2, bigDetected: 1, minutes: 3.6 });
    const h = headlineOf(addTallies([a, b]));
    expect(h.falsePerMinTissue).toBeCloseTo(0.25, 10);
    expect(h.sensitivityBig).toBeCloseTo(20 / 22, 10); // the per-seed mean would be 0.725
    expect(headlineOf(a).falsePerMinTissue).toBeCloseTo(1 / 0.9, 10);
  });

  it('joins the time-to-alert samples before taking percentiles', () => {
    const a = tally({ detected: 3, alertsOnDetected: 3, ttfaS: [0.4, 0.4, 5] });
    const b = tally({ detected: 2, alertsOnDetected: 3, ttfaS: [0.2, 0.3] });
    const pooled = addTallies([a, b]);
    expect(pooled.ttfaS).toHaveLength(5);
    const h = headlineOf(pooled);
    expect(h.ttfaMedian).toBe(0.4);
    expect(h.ttfaP90).toBe(5);
    expect(h.alertsPerDetected).toBeCloseTo(6 / 5, 10);
  });

  it('says "no figure" where a ratio has nothing under it, and counts alerts where there must be none', () => {
    const h = headlineOf(addTallies([tally({ liftedFrozen: 1 }), tally({ liftedFrozen: 2 })]));
    expect(h.sensitivityBig).toBeNull();
    expect(h.falsePerMinTissue).toBeNull();
    expect(h.frameSpecificity).toBeNull();
    expect(h.ttfaMedian).toBeNull();
    expect(h.alertsLiftedFrozen).toBe(3);
    expect(headlineOf(addTallies([])).alertsLiftedFrozen).toBe(0);
  });

  it('percentiles by nearest lower rank', () => {
    expect(pct([], 50)).toBeNull();
    expect(pct([3, 1, 2], 50)).toBe(2);
    expect(pct([1, 2, 3, 4], 90)).toBe(4);
    expect(pct([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90)).toBe(10);
  });
});
