import type { Db } from '../storage/database.js';

export const versionStates = ['downloading', 'downloaded', 'verified', 'rejected', 'active', 'previous', 'retired'] as const;
export type VersionState = (typeof versionStates)[number];

export interface ModelVersion {
  modelId: string;
  version: string;
  state: VersionState;
  /** The extracted bundle; null for the config's model (it lives in the assets) and once retired. */
  dir: string | null;
  bundleSha256: string | null;
  bundleBytes: number | null;
  keyId: string | null;
  source: string;
  errorCode: string | null;
  createdAt: number;
  stateAt: number;
  activatedAt: number | null;
}

export interface AuditEntry {
  at: number;
  updateId: string;
  modelId: string | null;
  version: string | null;
  /** received, verified, rejected, activated, rolled-back, retired, resumed, cleaned-up, ... */
  step: string;
  /** Who or what asked: mqtt-push, http-pull, fleet-announcement, cli, rollback, config, restart. */
  trigger: string;
  outcome: 'ok' | 'refused' | 'failed' | 'info';
  code: string | null;
  detail: Record<string, unknown> | null;
}

interface VersionRow {
  model_id: string;
  version: string;
  state: VersionState;
  dir: string | null;
  bundle_sha256: string | null;
  bundle_bytes: number | null;
  key_id: string | null;
  source: string;
  error_code: string | null;
  created_at: number;
  state_at: number;
  activated_at: number | null;
}

const toVersion = (row: VersionRow): ModelVersion => ({
  modelId: row.model_id,
  version: row.version,
  state: row.state,
  dir: row.dir,
  bundleSha256: row.bundle_sha256,
  bundleBytes: row.bundle_bytes,
  keyId: row.key_id,
  source: row.source,
  errorCode: row.error_code,
  createdAt: row.created_at,
  stateAt: row.state_at,
  activatedAt: row.activated_at,
});

interface AuditRow {
  at: number;
  update_id: string;
  model_id: string | null;
  version: string | null;
  step: string;
  trigger: string;
  outcome: AuditEntry['outcome'];
  code: string | null;
  detail: string | null;
}

const toAudit = (row: AuditRow): AuditEntry => ({
  at: row.at,
  updateId: row.update_id,
  modelId: row.model_id,
  version: row.version,
  step: row.step,
  trigger: row.trigger,
  outcome: row.outcome,
  code: row.code,
  detail: row.detail === null ? null : (JSON.parse(row.detail) as Record<string, unknown>),
});

/**
 * The registry tables (migration 4): model versions and their states, and the audit log. Sync
 * like every better-sqlite3 store: the caller groups writes in one transaction.
 */
export class RegistryStore {
  private readonly upsert;
  private readonly setStateStmt;
  private readonly byKey;
  private readonly all;
  private readonly inState;
  private readonly auditInsert;
  private readonly auditRecent;
  private readonly auditOfUpdate;

  constructor(readonly db: Db) {
    this.upsert = db.prepare(
      `INSERT INTO model_versions (model_id, version, state, dir, bundle_sha256, bundle_bytes, key_id, source, error_code, created_at, state_at, activated_at)
       VALUES (@modelId, @version, @state, @dir, @bundleSha256, @bundleBytes, @keyId, @source, @errorCode, @createdAt, @stateAt, @activatedAt)
       ON CONFLICT (model_id, version) DO UPDATE SET state = excluded.state, dir = excluded.dir, bundle_sha256 = excluded.bundle_sha256,
         bundle_bytes = excluded.bundle_bytes, key_id = excluded.key_id, source = excluded.source, error_code = excluded.error_code,
         state_at = excluded.state_at, activated_at = excluded.activated_at`,
    );
    this.setStateStmt = db.prepare<[VersionState, number, string | null, string, string]>(
      'UPDATE model_versions SET state = ?, state_at = ?, error_code = ? WHERE model_id = ? AND version = ?',
    );
    this.byKey = db.prepare<[string, string], VersionRow>('SELECT * FROM model_versions WHERE model_id = ? AND version = ?');
    this.all = db.prepare<[], VersionRow>('SELECT * FROM model_versions ORDER BY state_at DESC, created_at DESC');
    this.inState = db.prepare<[string], VersionRow>('SELECT * FROM model_versions WHERE state = ? ORDER BY state_at DESC');
    this.auditInsert = db.prepare(
      'INSERT INTO model_audit (at, update_id, model_id, version, step, trigger, outcome, code, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.auditRecent = db.prepare<[number], AuditRow>('SELECT * FROM model_audit ORDER BY id DESC LIMIT ?');
    this.auditOfUpdate = db.prepare<[string], AuditRow>('SELECT * FROM model_audit WHERE update_id = ? ORDER BY id');
  }

  put(version: ModelVersion): void {
    this.upsert.run(version);
  }

  setState(modelId: string, version: string, state: VersionState, at: number, errorCode: string | null = null): void {
    this.setStateStmt.run(state, at, errorCode, modelId, version);
  }

  get(modelId: string, version: string): ModelVersion | undefined {
    const row = this.byKey.get(modelId, version);
    return row ? toVersion(row) : undefined;
  }

  list(): ModelVersion[] {
    return this.all.all().map(toVersion);
  }

  withState(state: VersionState): ModelVersion[] {
    return this.inState.all(state).map(toVersion);
  }

  active(): ModelVersion | undefined {
    return this.withState('active')[0];
  }

  audit(entry: AuditEntry): void {
    this.auditInsert.run(
      entry.at,
      entry.updateId,
      entry.modelId,
      entry.version,
      entry.step,
      entry.trigger,
      entry.outcome,
      entry.code,
      entry.detail === null ? null : JSON.stringify(entry.detail),
    );
  }

  /** The audit log, newest first. */
  history(limit = 100): AuditEntry[] {
    return this.auditRecent.all(limit).map(toAudit);
  }

  /** One update's chain, from its trigger to its outcome. */
  chain(updateId: string): AuditEntry[] {
    return this.auditOfUpdate.all(updateId).map(toAudit);
  }
}
