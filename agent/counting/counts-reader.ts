import type { Db } from '../storage/database.js';

/** One line of `cctv-agent counts`: a bucket's count for one camera, line, direction and type. */
export interface CountsRow {
  from: string;
  to: string;
  cameraId: string;
  lineId: string;
  direction: string;
  vehicleType: string;
  count: number;
}

/** Read-only queries of the counting tables for the CLI (`counts`, `status`, `telemetry`). */
export class CountsReader {
  constructor(private readonly db: Db) {}

  /** Whether the database has the counting tables (an agent with counting ran on it). */
  static has(db: Db): boolean {
    return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'count_intervals'").get() !== undefined;
  }

  /**
   * Counts of the intervals that start in [since, until), summed per bucket of `bucketMs`
   * (starting at `origin` + a multiple of it; origin 0: aligned on the epoch), camera, line,
   * direction and type.
   */
  rows(options: { since: number; until: number; bucketMs: number; origin?: number; cameraId?: string | undefined }): CountsRow[] {
    const origin = options.origin ?? 0;
    const rows = this.db
      .prepare<
        [number, number, number, number, number, number, string | null, string | null],
        { bucket: number; camera_id: string; line_id: string; direction: string; vehicle_type: string; n: number }
      >(
        `SELECT ? + CAST((start_at - ?) / ? AS INTEGER) * ? AS bucket, camera_id, line_id, direction, vehicle_type, sum(count) AS n FROM counts
         WHERE start_at >= ? AND start_at < ? AND (? IS NULL OR camera_id = ?)
         GROUP BY bucket, camera_id, line_id, direction, vehicle_type ORDER BY bucket, camera_id, line_id, direction, vehicle_type`,
      )
      .all(origin, origin, options.bucketMs, options.bucketMs, options.since, options.until, options.cameraId ?? null, options.cameraId ?? null);
    return rows.map((row) => ({
      from: new Date(row.bucket).toISOString(),
      to: new Date(row.bucket + options.bucketMs).toISOString(),
      cameraId: row.camera_id,
      lineId: row.line_id,
      direction: row.direction,
      vehicleType: row.vehicle_type,
      count: row.n,
    }));
  }

  /** Intervals stored in [since, until) per camera, with their frames: what the counts rest on. */
  coverage(since: number, until: number): Array<{ cameraId: string; intervals: number; frames: number }> {
    return this.db
      .prepare<[number, number], { camera_id: string; intervals: number; frames: number }>(
        'SELECT camera_id, count(*) AS intervals, sum(frames) AS frames FROM count_intervals WHERE start_at >= ? AND start_at < ? GROUP BY camera_id ORDER BY camera_id',
      )
      .all(since, until)
      .map((row) => ({ cameraId: row.camera_id, intervals: row.intervals, frames: row.frames }));
  }

  /** Vehicles counted per camera, line and direction in intervals starting in [since, until) (telemetry). */
  totals(since: number, until: number): Array<{ cameraId: string; lineId: string; direction: string; count: number }> {
    return this.db
      .prepare<[number, number], { camera_id: string; line_id: string; direction: string; n: number }>(
        'SELECT camera_id, line_id, direction, sum(count) AS n FROM counts WHERE start_at >= ? AND start_at < ? GROUP BY camera_id, line_id, direction ORDER BY camera_id, line_id, direction',
      )
      .all(since, until)
      .map((row) => ({ cameraId: row.camera_id, lineId: row.line_id, direction: row.direction, count: row.n }));
  }
}
