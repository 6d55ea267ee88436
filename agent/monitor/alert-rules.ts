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

export interface RuleDecision {
  action: 'raise' | 'clear' | null;
  /** The figure the rule looked at (null: not enough labels, or the figure does not exist yet). */
  estimate: Estimate | null;
  /** Why nothing happened, for the monitor's health and docs. */
  reason: 'raised' | 'cleared' | 'too-few-labels' | 'cooldown' | 'above' | 'still-low' | 'not-cleared-yet' | 'no-figure';
}

/** The figure a rule watches in a window: overall or one vehicle type's. */
export function ruleEstimate(rule: AlertRule, window: WindowFigures): Estimate | null {
  const figures = rule.vehicleType === undefined ? window.overall : window.byType[rule.vehicleType];
  return figures?.[rule.metric] ?? null;
}

export function clearThreshold(rule: AlertRule): number {
  return rule.clearAt ?? Math.min(1, rule.below + 0.1);
}

/**
 * One evaluation of a rule. Raises when the window holds at least minLabels and the figure
 * (its point estimate, or with bound 'wilson-upper' the top of its 95 % interval) is at or below
 * `below`, unless the rule cleared less than cooldownMinutes ago. Clears when, with as many labels,
 * the point estimate is back at or above clearAt (hysteresis: between the two nothing changes).
 * docs/monitoring.md says why these choices keep an alert from flapping on a handful of labels.
 */
export function evaluateRule(rule: AlertRule, state: AlertState, window: WindowFigures, now: number): RuleDecision {
  const estimate = ruleEstimate(rule, window);
  if (estimate === null) return { action: null, estimate, reason: 'no-figure' };
  if (estimate.n < rule.minLabels) return { action: null, estimate, reason: 'too-few-labels' };
  if (!state.raised) {
    const watched = rule.bound === 'wilson-upper' ? estimate.high : estimate.value;
    if (watched > rule.below) return { action: null, estimate, reason: 'above' };
    if (state.clearedAt !== null && now - state.clearedAt < rule.cooldownMinutes * 60_000) return { action: null, estimate, reason: 'cooldown' };
    return { action: 'raise', estimate, reason: 'raised' };
  }
  if (estimate.value >= clearThreshold(rule)) return { action: 'clear', estimate, reason: 'cleared' };
  return { action: null, estimate, reason: estimate.value <= rule.below ? 'still-low' : 'not-cleared-yet' };
}

/** The state after a decision. */
export function applyDecision(state: AlertState, decision: RuleDecision, now: number): AlertState {
  if (decision.action === 'raise') return { raised: true, raisedAt: now, clearedAt: state.clearedAt };
  if (decision.action === 'clear') return { raised: false, raisedAt: state.raisedAt, clearedAt: now };
  return state;
}
