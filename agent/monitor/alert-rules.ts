import type { AlertRule } from '../config/monitor-schema.js';
import type { WindowFigures } from './quality-figures.js';
import type { Estimate } from './wilson.js';

/** One rule's state for one camera and model version. */
export interface AlertState {
  raised: boolean;
  /** When it was last raised / cleared (ms epoch), for the cooldown; null: never. */
  raisedAt: number | null;
  clearedAt: number | null;
}

export const QUIET: AlertState = { raised: false, raisedAt: null, clearedAt: null };

/**
 * What a rule watches: a figure, the interval around it, and how much it rests on (labels for
 * the labelled metrics; windows, intervals or frames for the others).
 */
export type Observation = Estimate;

export interface RuleDecision {
  action: 'raise' | 'clear' | null;
  /** The figure the rule looked at (null: the figure does not exist yet). */
  estimate: Observation | null;
  /** Why nothing happened, for the monitor's health and docs. */
  reason: 'raised' | 'cleared' | 'too-few-labels' | 'cooldown' | 'not-reached' | 'still-low' | 'not-cleared-yet' | 'no-figure';
}

/** The labelled figure a rule watches in a window: overall or one vehicle type's. */
export function ruleEstimate(rule: AlertRule, window: WindowFigures): Observation | null {
  const figures = rule.vehicleType === undefined ? window.overall : window.byType[rule.vehicleType];
  return (figures as Record<string, Observation | null | undefined> | undefined)?.[rule.metric] ?? null;
}

/** The threshold a rule raises at, and whether higher figures are the bad ones. */
export function thresholdOf(rule: AlertRule): { threshold: number; higherIsWorse: boolean } {
  return rule.above !== undefined ? { threshold: rule.above, higherIsWorse: true } : { threshold: rule.below!, higherIsWorse: false };
}

export function clearThreshold(rule: AlertRule): number {
  if (rule.clearAt !== undefined) return rule.clearAt;
  return rule.above !== undefined ? Math.max(0, rule.above - 0.1) : Math.min(1, rule.below! + 0.1);
}

/**
 * One evaluation of a rule. Raises when the figure rests on at least minLabels and is at or past
 * its threshold (`below`: at or below; `above`: at or above), by its point estimate or, with
 * bound 'interval', by the end of its 95 % interval on the good side (surely past), unless the
 * rule cleared less than cooldownMinutes ago. Clears when, resting on as much, the point
 * estimate is back at or past clearAt (hysteresis: between the two nothing changes).
 * docs/monitoring.md says why these choices keep an alert from flapping on a handful of labels.
 */
export function evaluateRule(rule: AlertRule, state: AlertState, estimate: Observation | null, now: number): RuleDecision {
  if (estimate === null) return { action: null, estimate, reason: 'no-figure' };
  if (estimate.n < rule.minLabels) return { action: null, estimate, reason: 'too-few-labels' };
  const { threshold, higherIsWorse } = thresholdOf(rule);
  // In "lower is worse" terms: a figure where higher is worse is mirrored.
  const bad = (value: number): number => (higherIsWorse ? -value : value);
  if (!state.raised) {
    const watched = rule.bound === 'interval' ? (higherIsWorse ? estimate.low : estimate.high) : estimate.value;
    if (bad(watched) > bad(threshold)) return { action: null, estimate, reason: 'not-reached' };
    if (state.clearedAt !== null && now - state.clearedAt < rule.cooldownMinutes * 60_000) return { action: null, estimate, reason: 'cooldown' };
    return { action: 'raise', estimate, reason: 'raised' };
  }
  if (bad(estimate.value) >= bad(clearThreshold(rule))) return { action: 'clear', estimate, reason: 'cleared' };
  return { action: null, estimate, reason: bad(estimate.value) <= bad(threshold) ? 'still-low' : 'not-cleared-yet' };
}

/** The state after a decision. */
export function applyDecision(state: AlertState, decision: RuleDecision, now: number): AlertState {
  if (decision.action === 'raise') return { raised: true, raisedAt: now, clearedAt: state.clearedAt };
  if (decision.action === 'clear') return { raised: false, raisedAt: state.raisedAt, clearedAt: now };
  return state;
}
