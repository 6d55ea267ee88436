import type { Db } from '../storage/database.js';
import type { SampleReason } from './sampler.js';

export interface QuotaSettings {
  maxBytes: number;
  maxSamples: number;
  retentionMs: number;
}

/** A sample the quota or retention takes away. */
export interface Doomed {
  sampleId: string;
  file: string;
  bytes: number;
  reason: SampleReason;
  disputed: boolean;
  capturedAt: number;
  why: 'age' | 'quota';
}

interface Row {
  sample_id: string;
  file: string;
  bytes: number;
  reason: string;
  disputed: number;
  captured_at: number;
}

const doomed = (row: Row, why: Doomed['why']): Doomed => ({
  sampleId: row.sample_id,
  file: row.file,
  bytes: row.bytes,
  reason: row.reason as SampleReason,
  disputed: row.disputed === 1,
  capturedAt: row.captured_at,
  why,
});

/**
 * What must go for the evidence to fit: every sample older than the retention, then, while the
 * count or the bytes are over the quota, the oldest undisputed samples, and disputed ones only
 * when no undisputed one is left. The quota is a hard bound on the disk, so disputed samples
 * are not exempt; they are only last.
 */
export class EvidenceQuota {
  private readonly totals;
  private readonly expired;
  private readonly oldestFirst;

  constructor(
    db: Db,
    private readonly settings: QuotaSettings,
  ) {
    this.totals = db.prepare<[], { samples: number; bytes: number }>('SELECT count(*) AS samples, coalesce(sum(bytes), 0) AS bytes FROM evidence');
    this.expired = db.prepare<[number], Row>('SELECT sample_id, file, bytes, reason, disputed, captured_at FROM evidence WHERE created_at < ? ORDER BY id');
    this.oldestFirst = db.prepare<[number], Row>(
      'SELECT sample_id, file, bytes, reason, disputed, captured_at FROM evidence WHERE created_at >= ? ORDER BY disputed, created_at, id',
    );
  }

  /** The samples to delete now (nothing is deleted here). */
  plan(now: number): Doomed[] {
    const cutoff = now - this.settings.retentionMs;
    let { samples, bytes } = this.totals.get()!;
    const out: Doomed[] = [];
    for (const row of this.expired.all(cutoff)) {
      out.push(doomed(row, 'age'));
      samples--;
      bytes -= row.bytes;
    }
    if (samples <= this.settings.maxSamples && bytes <= this.settings.maxBytes) return out;
    for (const row of this.oldestFirst.iterate(cutoff)) {
      if (samples <= this.settings.maxSamples && bytes <= this.settings.maxBytes) break;
      out.push(doomed(row, 'quota'));
      samples--;
      bytes -= row.bytes;
    }
    return out;
  }
}
