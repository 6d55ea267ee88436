import { describe, expect, it } from 'vitest';
import { alertRuleSchema } from '../../agent/config/monitor-schema.js';
import { applyDecision, evaluateRule, QUIET, ruleEstimate, type AlertState } from '../../agent/monitor/alert-rules.js';
import { type LabelledRow, windowFigures } from '../../agent/monitor/quality-figures.js';

const MINUTE = 60_000;
const rule = alertRuleSchema.parse({ id: 'low-precision', metric: 'precision', below: 0.4, minLabels: 30, cooldownMinutes: 30 });

/** A window of `labelled` car detections of which `correct` are right and the rest false positives. */
function window(correct: number, labelled: number) {
  const rows: LabelledRow[] = Array.from({ length: labelled }, (_, i) => ({
    verdict: i < correct ? 'correct' : 'false-positive',
    predictedType: 'car',
    trueType: i < correct ? 'car' : null,
    capturedAt: i,
  }));
  return windowFigures(rows);
}

/** Runs a rule over a sequence of (minute, correct, labelled) and returns the actions taken. */
function run(steps: Array<[number, number, number]>, which = rule): string[] {
  let state: AlertState = QUIET;
  const actions: string[] = [];
  for (const [minute, correct, labelled] of steps) {
    const decision = evaluateRule(which, state, ruleEstimate(which, window(correct, labelled)), minute * MINUTE);
    state = applyDecision(state, decision, minute * MINUTE);
    actions.push(decision.action ?? decision.reason);
  }
  return actions;
}

describe('alert rules (injected clock)', () => {
  it('the reference rule raises at precision 0.40 with 30 labels, not with 29, and not at 0.41', () => {
    expect(run([[0, 12, 30]])).toEqual(['raise']);
    expect(run([[0, 11, 29]])).toEqual(['too-few-labels']);
    expect(run([[0, 41, 100]])).toEqual(['not-reached']);
  });

  it('hysteresis: once raised it stays raised until precision is back at 0.50, then clears once', () => {
    expect(
      run([
        [0, 12, 30],
        [1, 13, 30],
        [2, 14, 30],
        [3, 15, 30],
        [4, 16, 30],
      ]),
    ).toEqual(['raise', 'not-cleared-yet', 'not-cleared-yet', 'clear', 'not-reached']);
  });

  it('no flapping around the threshold: 0.40, 0.43, 0.40, 0.43 raises once', () => {
    expect(
      run([
        [0, 40, 100],
        [1, 43, 100],
        [2, 40, 100],
        [3, 43, 100],
      ]),
    ).toEqual(['raise', 'not-cleared-yet', 'still-low', 'not-cleared-yet']);
  });

  it('cooldown: after a clear it does not raise again for 30 minutes', () => {
    expect(
      run([
        [0, 12, 30],
        [5, 20, 30],
        [10, 10, 30],
        [34, 10, 30],
        [35, 10, 30],
      ]),
    ).toEqual(['raise', 'clear', 'cooldown', 'cooldown', 'raise']);
  });

  it('bound interval raises only when the whole interval is below the threshold', () => {
    const strict = alertRuleSchema.parse({ ...rule, bound: 'interval' });
    // 12/30: interval 0.25-0.58, not surely below 0.40; 20/100: 0.13-0.29, surely below.
    expect(run([[0, 12, 30]], strict)).toEqual(['not-reached']);
    expect(run([[0, 20, 100]], strict)).toEqual(['raise']);
  });

  it('a clearAt at or under the threshold is refused by the config, and a rule needs exactly one of below and above', () => {
    expect(alertRuleSchema.safeParse({ ...rule, clearAt: 0.4 }).success).toBe(false);
    expect(alertRuleSchema.safeParse({ ...rule, above: 0.5 }).success).toBe(false);
    expect(alertRuleSchema.safeParse({ id: 'x', metric: 'precision' }).success).toBe(false);
  });

  it('a rule on a figure where higher is worse (above) raises at or above, clears at or below clearAt, and mirrors the interval bound', () => {
    const high = alertRuleSchema.parse({ id: 'too-high', metric: 'precision', above: 0.6, minLabels: 10, cooldownMinutes: 0 });
    const estimate = (value: number, n = 20) => ({ value, low: value - 0.1, high: value + 0.1, n });
    let state: AlertState = QUIET;
    const step = (value: number, at: number, which = high): string => {
      const decision = evaluateRule(which, state, estimate(value), at);
      state = applyDecision(state, decision, at);
      return decision.action ?? decision.reason;
    };
    expect([step(0.55, 0), step(0.6, 1), step(0.55, 2), step(0.5, 3)]).toEqual(['not-reached', 'raise', 'not-cleared-yet', 'clear']);
    state = QUIET;
    const surely = alertRuleSchema.parse({ ...high, bound: 'interval' });
    // The low end of the interval must be at or above 0.6: 0.65 (0.55-0.75) is not surely above.
    expect([step(0.65, 0, surely), step(0.7, 1, surely)]).toEqual(['not-reached', 'raise']);
  });
});
