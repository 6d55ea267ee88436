import type { Db } from '../storage/database.js';
import type { AlertState } from './alert-rules.js';
import type { ModelKey } from './feedback-store.js';
import type { ActiveAlert } from './quality-schema.js';

interface AlertRow {
  alert_id: string;
  rule_id: string;
  camera_id: string;
  model_id: string;
  model_version: string;
  state: 'raised' | 'cleared';
  raised_at: number;
  cleared_at: number | null;
  value: number | null;
  detail: string;
}

/** The alerts table: every alert raised, cleared or not; the state survives restarts. */
export class AlertStore {
  private readonly insert;
  private readonly clear;
  private readonly active;
  private readonly activeCountQuery;
  private readonly last;

  constructor(db: Db) {
    this.insert = db.prepare(
      `INSERT INTO alerts (alert_id, rule_id, camera_id, model_id, model_version, state, raised_at, cleared_at, value, detail) VALUES (?, ?, ?, ?, ?, 'raised', ?, NULL, ?, ?)`,
    );
    this.clear = db.prepare<[number, string]>("UPDATE alerts SET state = 'cleared', cleared_at = ? WHERE alert_id = ? AND state = 'raised'");
    this.active = db.prepare<[], AlertRow>("SELECT * FROM alerts WHERE state = 'raised' ORDER BY raised_at");
    this.activeCountQuery = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM alerts WHERE state = 'raised'");
    this.last = db.prepare<[string, string, string, string], AlertRow>(
      'SELECT * FROM alerts WHERE rule_id = ? AND camera_id = ? AND model_id = ? AND model_version = ? ORDER BY raised_at DESC, id DESC LIMIT 1',
    );
  }

  /** Call inside the transaction that also enqueues the alerts' retained state. */
  raise(alert: ActiveAlert, raisedAt: number): void {
    this.insert.run(alert.alertId, alert.ruleId, alert.cameraId, alert.model.id, alert.model.version, raisedAt, alert.value, JSON.stringify(alert));
  }

  cleared(alertId: string, at: number): void {
    this.clear.run(at, alertId);
  }

  /** Every alert raised and not cleared, as published. */
  activeAlerts(): ActiveAlert[] {
    return this.active.all().map((row) => JSON.parse(row.detail) as ActiveAlert);
  }

  /** How many alerts are raised (health, every few seconds: a count, not the alerts parsed). */
  activeCount(): number {
    return this.activeCountQuery.get()!.n;
  }

  /** A rule's state for one camera and model, from its latest alert (for the cooldown too). */
  stateOf(ruleId: string, key: ModelKey): { state: AlertState; alertId: string | null } {
    const row = this.last.get(ruleId, key.cameraId, key.modelId, key.modelVersion);
    if (!row) return { state: { raised: false, raisedAt: null, clearedAt: null }, alertId: null };
    return { state: { raised: row.state === 'raised', raisedAt: row.raised_at, clearedAt: row.cleared_at }, alertId: row.alert_id };
  }
}
