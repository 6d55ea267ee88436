import type { Vehicle } from '../inference/result.js';
import type { Db } from '../storage/database.js';
import type { SampleReason } from './sampler.js';

/** One kept frame: its JPEG (a file name under the evidence directory) and what the model said. */
export interface EvidenceSample {
  sampleId: string;
  resultId: string;
  cameraId: string;
  modelId: string;
  modelVersion: string;
  capturedAt: number;
  reason: SampleReason;
  file: string;
  bytes: number;
  width: number;
  height: number;
  /** The result's vehicles, as stored in results.vehicles (boxes normalised to the camera's picture). */
  detections: string;
  /** The camera's ROI when it had one: the JPEG shows that part of the picture. */
  crop: [number, number, number, number] | null;
  disputed: boolean;
  createdAt: number;
}

interface Row {
  sample_id: string;
  result_id: string;
  camera_id: string;
  model_id: string;
  model_version: string;
  captured_at: number;
  reason: string;
  file: string;
  bytes: number;
  width: number;
  height: number;
  detections: string;
  crop: string | null;
  disputed: number;
  created_at: number;
}

const COLUMNS =
  'sample_id, result_id, camera_id, model_id, model_version, captured_at, reason, file, bytes, width, height, detections, crop, disputed, created_at';

const fromRow = (row: Row): EvidenceSample => ({
  sampleId: row.sample_id,
  resultId: row.result_id,
  cameraId: row.camera_id,
  modelId: row.model_id,
  modelVersion: row.model_version,
  capturedAt: row.captured_at,
  reason: row.reason as SampleReason,
  file: row.file,
  bytes: row.bytes,
  width: row.width,
  height: row.height,
  detections: row.detections,
  crop: row.crop === null ? null : (JSON.parse(row.crop) as [number, number, number, number]),
  disputed: row.disputed === 1,
  createdAt: row.created_at,
});

export const detectionsOf = (sample: EvidenceSample): Vehicle[] => JSON.parse(sample.detections) as Vehicle[];

export interface ListFilter {
  cameraId?: string | undefined;
  reason?: SampleReason | undefined;
  disputed?: boolean | undefined;
  /** Captured at or after (ms). */
  since?: number | undefined;
  /** Paging: samples after this one (by row order). */
  after?: string | undefined;
  limit: number;
}

/** The evidence table: written by the evidence service, read by its commands and the CLI (read-only). */
export class EvidenceStore {
  private readonly byId;
  private readonly rowIdOf;
  private readonly totalsQuery;

  constructor(private readonly db: Db) {
    this.byId = db.prepare<[string], Row>(`SELECT ${COLUMNS} FROM evidence WHERE sample_id = ?`);
    this.rowIdOf = db.prepare<[string], { id: number }>('SELECT id FROM evidence WHERE sample_id = ?');
    this.totalsQuery = db.prepare<[], { samples: number; bytes: number }>('SELECT count(*) AS samples, coalesce(sum(bytes), 0) AS bytes FROM evidence');
  }

  get(sampleId: string): EvidenceSample | undefined {
    const row = this.byId.get(sampleId);
    return row ? fromRow(row) : undefined;
  }

  totals(): { samples: number; bytes: number } {
    return this.totalsQuery.get()!;
  }

  /** Samples in the order they were kept, filtered; `after` pages on. */
  list(filter: ListFilter): EvidenceSample[] {
    const where: string[] = [];
    const params: Array<string | number> = [];
    if (filter.cameraId !== undefined) {
      where.push('camera_id = ?');
      params.push(filter.cameraId);
    }
    if (filter.reason !== undefined) {
      where.push('reason = ?');
      params.push(filter.reason);
    }
    if (filter.disputed !== undefined) where.push(filter.disputed ? 'disputed = 1' : 'disputed = 0');
    if (filter.since !== undefined) {
      where.push('captured_at >= ?');
      params.push(filter.since);
    }
    if (filter.after !== undefined) {
      // An unknown (perhaps pruned) cursor starts from the beginning rather than failing.
      where.push('id > ?');
      params.push(this.rowIdOf.get(filter.after)?.id ?? 0);
    }
    const sql = `SELECT ${COLUMNS} FROM evidence ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`;
    return this.db
      .prepare<Array<string | number>, Row>(sql)
      .all(...params, filter.limit)
      .map(fromRow);
  }

  /** Every sample, oldest first (export). */
  all(): EvidenceSample[] {
    return this.db.prepare<[], Row>(`SELECT ${COLUMNS} FROM evidence ORDER BY id`).all().map(fromRow);
  }
}

/** The writes of the evidence service: a kept sample, disputes, and deletions by the quota. */
export class EvidenceWriter {
  private readonly insertRow;
  private readonly disputeRow;
  private readonly deleteRow;
  readonly markDisputed: (resultIds: readonly string[]) => number;
  /** Rows inserted or deleted through this writer (the only one): cached totals are valid while it holds. */
  private rowChanges = 0;

  get changes(): number {
    return this.rowChanges;
  }

  constructor(db: Db) {
    this.insertRow = db.prepare(`INSERT INTO evidence (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.disputeRow = db.prepare('UPDATE evidence SET disputed = 1 WHERE result_id = ? AND disputed = 0');
    this.deleteRow = db.prepare('DELETE FROM evidence WHERE sample_id = ?');
    this.markDisputed = db.transaction((resultIds: readonly string[]) => {
      let marked = 0;
      for (const id of resultIds) marked += this.disputeRow.run(id).changes;
      return marked;
    });
  }

  insert(sample: EvidenceSample): void {
    this.rowChanges++;
    this.insertRow.run(
      sample.sampleId,
      sample.resultId,
      sample.cameraId,
      sample.modelId,
      sample.modelVersion,
      sample.capturedAt,
      sample.reason,
      sample.file,
      sample.bytes,
      sample.width,
      sample.height,
      sample.detections,
      sample.crop === null ? null : JSON.stringify(sample.crop),
      sample.disputed ? 1 : 0,
      sample.createdAt,
    );
  }

  delete(sampleId: string): void {
    this.rowChanges++;
    this.deleteRow.run(sampleId);
  }
}
