import type { Db } from '../storage/database.js';
import type { ClosedInterval } from './camera-counter.js';
import type { CountErrorPayload } from './counts-schema.js';

export interface CountRow {
  cameraId: string;
  startAt: number;
  lineId: string;
  direction: string;
  vehicleType: string;
  count: number;
}

/** The counting tables of migration 5: closed intervals, their non-zero counts, comparisons. */
export class CountStore {
  private readonly insertInterval;
  private readonly insertCount;
  private readonly intervalsIn;
  private readonly countsIn;
  private readonly insertError;
  private readonly latestErrorStatement;

  constructor(db: Db) {
    this.insertInterval = db.prepare<[string, number, number, number, string, string]>(
      'INSERT OR REPLACE INTO count_intervals (camera_id, start_at, interval_s, frames, message_id, sample) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.insertCount = db.prepare<[string, number, string, string, string, number]>(
      'INSERT OR REPLACE INTO counts (camera_id, start_at, line_id, direction, vehicle_type, count) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.intervalsIn = db.prepare<[string, number, number], { n: number }>(
      'SELECT count(*) AS n FROM count_intervals WHERE camera_id = ? AND start_at >= ? AND start_at + interval_s * 1000 <= ?',
    );
    this.countsIn = db.prepare<[string, number, number], { line_id: string; direction: string; vehicle_type: string; n: number }>(
      `SELECT c.line_id, c.direction, c.vehicle_type, sum(c.count) AS n FROM counts c
       JOIN count_intervals i ON i.camera_id = c.camera_id AND i.start_at = c.start_at
       WHERE c.camera_id = ? AND c.start_at >= ? AND c.start_at + i.interval_s * 1000 <= ?
       GROUP BY c.line_id, c.direction, c.vehicle_type`,
    );
    this.insertError = db.prepare<[number, string, number, number, number, number, number | null, string]>(
      'INSERT INTO count_errors (at, camera_id, from_at, to_at, reference_total, agent_total, total_error, sample) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.latestErrorStatement = db.prepare<[string], { sample: string }>(
      'SELECT sample FROM count_errors WHERE camera_id = ? ORDER BY at DESC, id DESC LIMIT 1',
    );
  }

  /** One closed interval and its non-zero counts (inside the caller's transaction). */
  writeInterval(interval: ClosedInterval, messageId: string, sample: string): void {
    this.insertInterval.run(interval.cameraId, interval.startAt, interval.intervalMs / 1000, interval.frames, messageId, sample);
    for (const line of interval.lines) {
      for (const [type, count] of Object.entries(line.counts)) {
        if (count > 0) this.insertCount.run(interval.cameraId, interval.startAt, line.lineId, line.direction, type, count);
      }
    }
  }

  /** The closed intervals wholly inside [from, to), and their counts summed per line, direction and type. */
  countsBetween(
    cameraId: string,
    from: number,
    to: number,
  ): { intervals: number; rows: Array<{ lineId: string; direction: string; vehicleType: string; count: number }> } {
    return {
      intervals: this.intervalsIn.get(cameraId, from, to)!.n,
      rows: this.countsIn
        .all(cameraId, from, to)
        .map((row) => ({ lineId: row.line_id, direction: row.direction, vehicleType: row.vehicle_type, count: row.n })),
    };
  }

  writeError(payload: CountErrorPayload, at: number, from: number, to: number): void {
    this.insertError.run(at, payload.cameraId, from, to, payload.total.reference, payload.total.agent, payload.total.error, JSON.stringify(payload));
  }

  latestError(cameraId: string): CountErrorPayload | undefined {
    const row = this.latestErrorStatement.get(cameraId);
    return row ? (JSON.parse(row.sample) as CountErrorPayload) : undefined;
  }
}
