import type { Db } from '../storage/database.js';
import type { ActiveAlert, QualityPayload, RetrainEvidence, RetrainState } from './quality-schema.js';

export interface RetrainView {
  requestId: string;
  cameraId: string;
  model: { id: string; version: string };
  state: RetrainState;
  trigger: string;
  reason: string;
  raisedAt: number;
  stateAt: number;
  evidenceSamples: number;
  transitions: Array<{ at: number; from: string | null; to: string; actor: string }>;
}

/**
 * A read-only view of the monitoring tables for `cctv-agent monitor` (and the telemetry log):
 * what the agent last measured per camera and model, its alerts and its retrain requests.
 */
export class MonitorReader {
  constructor(private readonly db: Db) {}

  /** The latest quality figures of each camera and model version, newest first. */
  latestQuality(): QualityPayload[] {
    const rows = this.db
      .prepare<[], { sample: string }>(
        `SELECT q.sample FROM quality q JOIN (SELECT camera_id, model_id, model_version, max(id) AS id FROM quality GROUP BY camera_id, model_id, model_version) latest
         ON q.id = latest.id ORDER BY q.at DESC`,
      )
      .all();
    return rows.map((row) => JSON.parse(row.sample) as QualityPayload);
  }

  /** Precision over the count window, as published, for a sparkline. */
  precisionSeries(cameraId: string, model: { id: string; version: string }, since: number): Array<{ at: number; value: number | null }> {
    return this.db
      .prepare<[string, string, string, number], { at: number; precision: number | null }>(
        'SELECT at, precision FROM quality WHERE camera_id = ? AND model_id = ? AND model_version = ? AND at >= ? ORDER BY at',
      )
      .all(cameraId, model.id, model.version, since)
      .map((row) => ({ at: row.at, value: row.precision }));
  }

  activeAlerts(): ActiveAlert[] {
    return this.db
      .prepare<[], { detail: string }>("SELECT detail FROM alerts WHERE state = 'raised' ORDER BY raised_at")
      .all()
      .map((row) => JSON.parse(row.detail) as ActiveAlert);
  }

  retrainRequests(limit = 20): RetrainView[] {
    const transitions = this.db.prepare<[string], { at: number; from_state: string | null; to_state: string; actor: string }>(
      'SELECT at, from_state, to_state, actor FROM retrain_transitions WHERE request_id = ? ORDER BY at, id',
    );
    return this.db
      .prepare<
        [number],
        {
          request_id: string;
          camera_id: string;
          model_id: string;
          model_version: string;
          state: RetrainState;
          trigger: string;
          reason: string;
          raised_at: number;
          state_at: number;
          evidence: string;
        }
      >('SELECT * FROM retrain_requests ORDER BY raised_at DESC, id DESC LIMIT ?')
      .all(limit)
      .map((row) => ({
        requestId: row.request_id,
        cameraId: row.camera_id,
        model: { id: row.model_id, version: row.model_version },
        state: row.state,
        trigger: row.trigger,
        reason: row.reason,
        raisedAt: row.raised_at,
        stateAt: row.state_at,
        evidenceSamples: (JSON.parse(row.evidence) as RetrainEvidence).evidenceSampleIds.length,
        transitions: transitions.all(row.request_id).map((entry) => ({ at: entry.at, from: entry.from_state, to: entry.to_state, actor: entry.actor })),
      }));
  }
}
