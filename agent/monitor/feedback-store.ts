import type { VehicleType } from '../common/vehicle-types.js';
import { AgentError } from '../errors.js';
import type { Db } from '../storage/database.js';
import type { FeedbackItem, FeedbackResult } from './feedback-schema.js';
import type { LabelledRow } from './quality-figures.js';

/** A camera and the model version that produced its results: the unit every figure is kept per. */
export interface ModelKey {
  cameraId: string;
  modelId: string;
  modelVersion: string;
}

export const keyOf = (key: ModelKey): string => `${key.cameraId}\u0000${key.modelId}\u0000${key.modelVersion}`;

export interface Applied extends FeedbackResult {
  /** The camera and model versions the new verdicts are about. */
  touched: ModelKey[];
  /** Results a verdict disputed (false positive, wrong type, a miss): their evidence is kept. */
  disputed: string[];
}

interface ResultRow {
  camera_id: string;
  model_id: string;
  model_version: string;
  captured_at: number;
  vehicles: string;
}

/**
 * The feedback table: verdicts checked against the stored results and written all or none in
 * one transaction (a batch with one bad item stores nothing), idempotent by item id.
 */
export class FeedbackStore {
  private readonly byId;
  private readonly result;
  private readonly existing;
  private readonly remove;
  private readonly insert;
  private readonly applyBatch: (items: readonly FeedbackItem[], source: string, fleet: boolean, now: number) => Applied;

  constructor(db: Db) {
    this.byId = db.prepare<[string], { id: number }>('SELECT id FROM feedback WHERE feedback_id = ?');
    this.result = db.prepare<[string], ResultRow>('SELECT camera_id, model_id, model_version, captured_at, vehicles FROM results WHERE message_id = ?');
    this.existing = db.prepare<[string, number], { id: number }>('SELECT id FROM feedback WHERE result_id = ? AND detection_index = ?');
    this.remove = db.prepare<[number]>('DELETE FROM feedback WHERE id = ?');
    this.insert = db.prepare(
      `INSERT INTO feedback (feedback_id, received_at, source, result_id, camera_id, model_id, model_version, captured_at, detection_index, verdict, predicted_type, score, true_type, box)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.applyBatch = db.transaction((items, source, fleet, now) => this.applyAll(items, source, fleet, now));
  }

  /**
   * Stores a batch. Device feedback naming a result this device does not hold, or a detection
   * index past its vehicles, throws (FEEDBACK_UNKNOWN_RESULT, FEEDBACK_DETECTION_OUT_OF_RANGE)
   * and nothing is stored; fleet feedback skips results it does not hold ('not-mine').
   */
  apply(items: readonly FeedbackItem[], source: string, options: { fleet: boolean; now?: number }): Applied {
    return this.applyBatch(items, source, options.fleet, options.now ?? Date.now());
  }

  private applyAll(items: readonly FeedbackItem[], source: string, fleet: boolean, now: number): Applied {
    const out: Applied = { stored: 0, duplicates: 0, replaced: 0, notMine: 0, items: [], touched: [], disputed: [] };
    const touched = new Map<string, ModelKey>();
    const seenInBatch = new Set<string>();
    for (const [index, item] of items.entries()) {
      if (seenInBatch.has(item.id) || this.byId.get(item.id)) {
        out.duplicates++;
        out.items.push({ id: item.id, status: 'duplicate' });
        continue;
      }
      seenInBatch.add(item.id);
      const result = this.result.get(item.resultId);
      if (!result) {
        if (fleet) {
          out.notMine++;
          out.items.push({ id: item.id, status: 'not-mine' });
          continue;
        }
        throw new AgentError('FEEDBACK_UNKNOWN_RESULT', `items.${index}: no result "${item.resultId}" on this device`);
      }
      let predicted: VehicleType | null = null;
      let score: number | null = null;
      let detection: number | null = null;
      if (item.verdict !== 'missed') {
        const vehicles = JSON.parse(result.vehicles) as Array<{ type: VehicleType; score: number }>;
        if (item.detection >= vehicles.length) {
          throw new AgentError(
            'FEEDBACK_DETECTION_OUT_OF_RANGE',
            `items.${index}: detection ${item.detection} of result "${item.resultId}", which has ${vehicles.length} vehicle(s) (0 to ${vehicles.length - 1})`,
          );
        }
        detection = item.detection;
        predicted = vehicles[item.detection]!.type;
        score = vehicles[item.detection]!.score;
      }
      let status: 'stored' | 'replaced' = 'stored';
      if (detection !== null) {
        const earlier = this.existing.get(item.resultId, detection);
        if (earlier) {
          this.remove.run(earlier.id);
          status = 'replaced';
        }
      }
      const trueType = item.verdict === 'correct' ? predicted : item.verdict === 'wrong-type' ? item.trueType : item.verdict === 'missed' ? item.type : null;
      const box = item.verdict === 'missed' && item.box ? JSON.stringify(item.box) : null;
      this.insert.run(
        item.id,
        now,
        source,
        item.resultId,
        result.camera_id,
        result.model_id,
        result.model_version,
        result.captured_at,
        detection,
        item.verdict,
        predicted,
        score,
        trueType,
        box,
      );
      if (status === 'stored') out.stored++;
      else out.replaced++;
      out.items.push({ id: item.id, status });
      const key = { cameraId: result.camera_id, modelId: result.model_id, modelVersion: result.model_version };
      touched.set(keyOf(key), key);
      if (item.verdict !== 'correct') out.disputed.push(item.resultId);
    }
    out.touched = [...touched.values()];
    return out;
  }
}

type Row = { verdict: LabelledRow['verdict']; predicted_type: VehicleType | null; true_type: VehicleType | null; captured_at: number };
const toLabelled = (row: Row): LabelledRow => ({
  verdict: row.verdict,
  predictedType: row.predicted_type,
  trueType: row.true_type,
  capturedAt: row.captured_at,
});

/** Reads the windows the figures are computed over (the agent's monitor and the CLI). */
export class FeedbackWindows {
  private readonly lastDetections;
  private readonly missesSince;
  private readonly since;
  private readonly keys;

  constructor(db: Db) {
    const where = 'camera_id = ? AND model_id = ? AND model_version = ?';
    this.lastDetections = db.prepare<[string, string, string, number], Row>(
      `SELECT verdict, predicted_type, true_type, captured_at FROM feedback WHERE ${where} AND verdict != 'missed' ORDER BY captured_at DESC, id DESC LIMIT ?`,
    );
    this.missesSince = db.prepare<[string, string, string, number], Row>(
      `SELECT verdict, predicted_type, true_type, captured_at FROM feedback WHERE ${where} AND verdict = 'missed' AND captured_at >= ?`,
    );
    this.since = db.prepare<[string, string, string, number], Row>(
      `SELECT verdict, predicted_type, true_type, captured_at FROM feedback WHERE ${where} AND captured_at >= ?`,
    );
    this.keys = db.prepare<[number], { camera_id: string; model_id: string; model_version: string }>(
      'SELECT DISTINCT camera_id, model_id, model_version FROM feedback WHERE received_at >= ?',
    );
  }

  /** The last `size` labelled detections by capture time, with the misses reported over the same span. */
  byLabels(key: ModelKey, size: number): LabelledRow[] {
    const detections = this.lastDetections.all(key.cameraId, key.modelId, key.modelVersion, size);
    if (detections.length === 0) return [];
    const oldest = detections[detections.length - 1]!.captured_at;
    return [...detections, ...this.missesSince.all(key.cameraId, key.modelId, key.modelVersion, oldest)].map(toLabelled);
  }

  /** Every verdict on frames captured since `sinceMs`. */
  byTime(key: ModelKey, sinceMs: number): LabelledRow[] {
    return this.since.all(key.cameraId, key.modelId, key.modelVersion, sinceMs).map(toLabelled);
  }

  /** The camera/model pairs that received feedback since `sinceMs`. */
  keysSince(sinceMs: number): ModelKey[] {
    return this.keys.all(sinceMs).map((row) => ({ cameraId: row.camera_id, modelId: row.model_id, modelVersion: row.model_version }));
  }
}
