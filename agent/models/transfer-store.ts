import type { Db } from '../storage/database.js';

export interface TransferRow {
  transferId: string;
  updateId: string;
  kind: 'push' | 'pull';
  trigger: string;
  size: number;
  sha256: string;
  chunkSize: number;
  chunks: number;
  received: Buffer;
  url: string | null;
  activate: boolean;
  startedAt: number;
  updatedAt: number;
}

interface Row {
  transfer_id: string;
  update_id: string;
  kind: 'push' | 'pull';
  trigger: string;
  size: number;
  sha256: string;
  chunk_size: number;
  chunks: number;
  received: Buffer;
  url: string | null;
  activate: number;
  started_at: number;
  updated_at: number;
}

/** Transfers in flight (migration 4): what a restart resumes. */
export class TransferStore {
  private readonly insert;
  private readonly progress;
  private readonly remove;
  private readonly ofKind;

  constructor(db: Db) {
    this.insert = db.prepare(
      `INSERT OR REPLACE INTO model_transfers (transfer_id, update_id, kind, trigger, size, sha256, chunk_size, chunks, received, url, activate, started_at, updated_at)
       VALUES (@transferId, @updateId, @kind, @trigger, @size, @sha256, @chunkSize, @chunks, @received, @url, @activate, @startedAt, @updatedAt)`,
    );
    this.progress = db.prepare<[Buffer, number, string]>('UPDATE model_transfers SET received = ?, updated_at = ? WHERE transfer_id = ?');
    this.remove = db.prepare<[string]>('DELETE FROM model_transfers WHERE transfer_id = ?');
    this.ofKind = db.prepare<[string], Row>('SELECT * FROM model_transfers WHERE kind = ? ORDER BY started_at');
  }

  put(row: TransferRow): void {
    this.insert.run({ ...row, activate: row.activate ? 1 : 0 });
  }

  saveProgress(transferId: string, received: Buffer, at: number): void {
    this.progress.run(received, at, transferId);
  }

  delete(transferId: string): void {
    this.remove.run(transferId);
  }

  list(kind: 'push' | 'pull'): TransferRow[] {
    return this.ofKind.all(kind).map((row) => ({
      transferId: row.transfer_id,
      updateId: row.update_id,
      kind: row.kind,
      trigger: row.trigger,
      size: row.size,
      sha256: row.sha256,
      chunkSize: row.chunk_size,
      chunks: row.chunks,
      received: row.received,
      url: row.url,
      activate: row.activate === 1,
      startedAt: row.started_at,
      updatedAt: row.updated_at,
    }));
  }
}
