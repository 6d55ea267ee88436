import type { Db } from '../storage/database.js';
import type { DriftPayload } from './drift-schema.js';

export interface ReferenceView {
  cameraId: string;
  model: { id: string; version: string };
  source: string;
  from: number;
  to: number;
}

/** A read-only view of the drift log for `cctv-agent monitor`: the last window per camera and model, and a series. */
export class DriftReader {
  constructor(private readonly db: Db) {}

  latestWindows(): DriftPayload[] {
    return this.db
      .prepare<[], { sample: string }>(
        `SELECT w.sample FROM drift_windows w JOIN (SELECT camera_id, model_id, model_version, max(id) AS id FROM drift_windows GROUP BY camera_id, model_id, model_version) latest
         ON w.id = latest.id ORDER BY w.at DESC`,
      )
      .all()
      .map((row) => JSON.parse(row.sample) as DriftPayload);
  }

  /** Drifted features per window since a time, for a sparkline. */
  driftedSeries(cameraId: string, model: { id: string; version: string }, since: number): Array<{ at: number; value: number | null }> {
    return this.db
      .prepare<[string, string, string, number], { at: number; value: number }>(
        'SELECT at, drifted_features AS value FROM drift_windows WHERE camera_id = ? AND model_id = ? AND model_version = ? AND at >= ? ORDER BY at',
      )
      .all(cameraId, model.id, model.version, since);
  }

  references(): ReferenceView[] {
    return this.db
      .prepare<[], { camera_id: string; model_id: string; model_version: string; source: string; captured_from: number; captured_to: number }>(
        'SELECT camera_id, model_id, model_version, source, captured_from, captured_to FROM drift_reference ORDER BY camera_id',
      )
      .all()
      .map((row) => ({
        cameraId: row.camera_id,
        model: { id: row.model_id, version: row.model_version },
        source: row.source,
        from: row.captured_from,
        to: row.captured_to,
      }));
  }
}

/**
 * Deletes stored references (one camera's or all): a running agent notices at its next window
 * and captures a new one; a stopped one captures at start.
 */
export function deleteReferences(db: Db, cameraId: string | undefined): number {
  const statement =
    cameraId === undefined ? db.prepare('DELETE FROM drift_reference') : db.prepare<[string]>('DELETE FROM drift_reference WHERE camera_id = ?');
  return (cameraId === undefined ? statement.run() : statement.run(cameraId)).changes;
}
