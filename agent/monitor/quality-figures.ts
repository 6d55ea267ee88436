import type { VehicleType } from '../common/vehicle-types.js';
import { type Estimate, wilson } from './wilson.js';

/** One verdict as the windows need it (a feedback row). */
export interface LabelledRow {
  verdict: 'correct' | 'wrong-type' | 'false-positive' | 'missed';
  /** The detection's type; null for a missed vehicle. */
  predictedType: VehicleType | null;
  /** The true type: = predicted for correct, the reviewer's for wrong-type and missed, null for false-positive. */
  trueType: VehicleType | null;
  capturedAt: number;
}

export interface Figures {
  /** Detections with a verdict (correct + wrong-type + false-positive). */
  labelled: number;
  correct: number;
  wrongType: number;
  falsePositive: number;
  /** Vehicles reviewers reported missed. */
  missed: number;
  /** Right vehicle and right type, of the labelled detections. */
  precision: Estimate | null;
  /** A vehicle at all (a wrong type counts), of the labelled detections. */
  detectionPrecision: Estimate | null;
  /** Right vehicle and right type, of the vehicles there (found or reported missed); null when the window has no reported miss. */
  recall: Estimate | null;
  /** Found at all, of the vehicles there. */
  detectionRecall: Estimate | null;
}

/** Counts of predicted type (row) against true type (column); 'none' = not a vehicle, 'missed' row = not detected. */
export type Confusion = Record<string, Record<string, number>>;

export interface WindowFigures {
  /** Capture time of the oldest and newest verdict in the window (ms epoch); null when empty. */
  from: number | null;
  to: number | null;
  overall: Figures;
  byType: Partial<Record<VehicleType, Figures>>;
  confusion: Confusion;
}

interface Tally {
  correct: number;
  /** Detections of this type that were another type (for precision). */
  wrongAsPredicted: number;
  falsePositive: number;
  /** Vehicles of this type detected as another type (for recall). */
  wrongAsTrue: number;
  missed: number;
}

function figuresOf(tally: Tally, recallKnown: boolean): Figures {
  const { correct, wrongAsPredicted, falsePositive, wrongAsTrue, missed } = tally;
  const labelled = correct + wrongAsPredicted + falsePositive;
  const there = correct + wrongAsTrue + missed;
  return {
    labelled,
    correct,
    wrongType: wrongAsPredicted,
    falsePositive,
    missed,
    precision: wilson(correct, labelled),
    detectionPrecision: wilson(correct + wrongAsPredicted, labelled),
    recall: recallKnown ? wilson(correct, there) : null,
    detectionRecall: recallKnown ? wilson(correct + wrongAsTrue, there) : null,
  };
}

/**
 * Precision, recall, their Wilson intervals and the confusion table over a set of verdicts.
 * Overall: a wrong-type detection is a vehicle (detectionPrecision counts it) but not a right
 * one (precision does not). Per type: precision of type T over detections predicted T; recall of
 * T over vehicles truly T (found as T, found as another type, or missed). Recall is reported only
 * when misses were reported at all: without them every vehicle would look found (docs/monitoring.md).
 */
export function windowFigures(rows: readonly LabelledRow[]): WindowFigures {
  let from: number | null = null;
  let to: number | null = null;
  const counts = new Map<string, Tally>();
  const bucket = (type: string) => {
    let entry = counts.get(type);
    if (!entry) {
      entry = { correct: 0, wrongAsPredicted: 0, falsePositive: 0, wrongAsTrue: 0, missed: 0 };
      counts.set(type, entry);
    }
    return entry;
  };
  const confusion: Confusion = {};
  const count = (predicted: string, actual: string): void => {
    confusion[predicted] ??= {};
    confusion[predicted][actual] = (confusion[predicted][actual] ?? 0) + 1;
  };
  let correct = 0;
  let wrongType = 0;
  let falsePositive = 0;
  let missed = 0;
  for (const row of rows) {
    from = from === null ? row.capturedAt : Math.min(from, row.capturedAt);
    to = to === null ? row.capturedAt : Math.max(to, row.capturedAt);
    switch (row.verdict) {
      case 'correct':
        correct++;
        bucket(row.predictedType!).correct++;
        count(row.predictedType!, row.predictedType!);
        break;
      case 'wrong-type':
        wrongType++;
        bucket(row.predictedType!).wrongAsPredicted++;
        bucket(row.trueType!).wrongAsTrue++;
        count(row.predictedType!, row.trueType!);
        break;
      case 'false-positive':
        falsePositive++;
        bucket(row.predictedType!).falsePositive++;
        count(row.predictedType!, 'none');
        break;
      case 'missed':
        missed++;
        bucket(row.trueType!).missed++;
        count('missed', row.trueType!);
        break;
    }
  }
  // Recall only where reviewers report misses at all: otherwise every vehicle would look found.
  const recallKnown = missed > 0;
  const byType: Partial<Record<VehicleType, Figures>> = {};
  for (const [type, entry] of [...counts].sort(([a], [b]) => a.localeCompare(b))) byType[type as VehicleType] = figuresOf(entry, recallKnown);
  const overall = figuresOf({ correct, wrongAsPredicted: wrongType, falsePositive, wrongAsTrue: wrongType, missed }, recallKnown);
  return { from, to, overall, byType, confusion };
}
