import type { Db } from '../storage/database.js';
import type { ModelKey } from './feedback-store.js';
import type { RetrainEvidence, RetrainState } from './quality-schema.js';

export interface RetrainRequest extends ModelKey {
  requestId: string;
  state: RetrainState;
  trigger: string;
  reason: string;
  raisedAt: number;
  stateAt: number;
  evidence: RetrainEvidence;
}

interface Row {
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

const toRequest = (row: Row): RetrainRequest => ({
  requestId: row.request_id,
  cameraId: row.camera_id,
  modelId: row.model_id,
  modelVersion: row.model_version,
  state: row.state,
  trigger: row.trigger,
  reason: row.reason,
  raisedAt: row.raised_at,
  stateAt: row.state_at,
  evidence: JSON.parse(row.evidence) as RetrainEvidence,
});

/**
 * Retrain requests and their audit trail (retrain_transitions: every change, when, by whom). At
 * most one is pending per camera and model version: a second trigger while one is pending adds
 * nothing. Call the writing methods inside the transaction that enqueues the published state.
 */
export class RetrainStore {
  private readonly insert;
  private readonly setState;
  private readonly audit;
  private readonly byId;
  private readonly pendingFor;
  private readonly pendingOfCamera;
  private readonly recent;
  private readonly pendingCountQuery;

  constructor(db: Db) {
    this.insert = db.prepare(
      `INSERT INTO retrain_requests (request_id, camera_id, model_id, model_version, state, trigger, reason, raised_at, state_at, evidence) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)`,
    );
    this.setState = db.prepare<[string, number, string]>('UPDATE retrain_requests SET state = ?, state_at = ? WHERE request_id = ?');
    this.audit = db.prepare('INSERT INTO retrain_transitions (request_id, at, from_state, to_state, actor, detail) VALUES (?, ?, ?, ?, ?, ?)');
    this.byId = db.prepare<[string], Row>('SELECT * FROM retrain_requests WHERE request_id = ?');
    this.pendingFor = db.prepare<[string, string, string], Row>(
      "SELECT * FROM retrain_requests WHERE state = 'pending' AND camera_id = ? AND model_id = ? AND model_version = ? LIMIT 1",
    );
    this.pendingOfCamera = db.prepare<[string], Row>("SELECT * FROM retrain_requests WHERE state = 'pending' AND camera_id = ?");
    this.recent = db.prepare<[number], Row>('SELECT * FROM retrain_requests ORDER BY raised_at DESC, id DESC LIMIT ?');
    this.pendingCountQuery = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM retrain_requests WHERE state = 'pending'");
  }

  pending(key: ModelKey): RetrainRequest | undefined {
    const row = this.pendingFor.get(key.cameraId, key.modelId, key.modelVersion);
    return row ? toRequest(row) : undefined;
  }

  get(requestId: string): RetrainRequest | undefined {
    const row = this.byId.get(requestId);
    return row ? toRequest(row) : undefined;
  }

  /** The most recent requests, newest first. */
  list(limit = 50): RetrainRequest[] {
    return this.recent.all(limit).map(toRequest);
  }

  /** How many requests are pending (health, every few seconds: a count, not the requests parsed). */
  pendingCount(): number {
    return this.pendingCountQuery.get()!.n;
  }

  raise(request: Omit<RetrainRequest, 'state' | 'stateAt'>, actor: string): RetrainRequest {
    this.insert.run(
      request.requestId,
      request.cameraId,
      request.modelId,
      request.modelVersion,
      request.trigger,
      request.reason,
      request.raisedAt,
      request.raisedAt,
      JSON.stringify(request.evidence),
    );
    this.audit.run(request.requestId, request.raisedAt, null, 'pending', actor, request.reason);
    return { ...request, state: 'pending', stateAt: request.raisedAt };
  }

  transition(request: RetrainRequest, to: RetrainState, actor: string, at: number, detail: string | null = null): RetrainRequest {
    this.setState.run(to, at, request.requestId);
    this.audit.run(request.requestId, at, request.state, to, actor, detail);
    return { ...request, state: to, stateAt: at };
  }

  /** Pending requests of a camera for another model than `active`: a newer model answers them. */
  pendingForOtherModels(cameraId: string, active: { id: string; version: string }): RetrainRequest[] {
    return this.pendingOfCamera
      .all(cameraId)
      .map(toRequest)
      .filter((request) => request.modelId !== active.id || request.modelVersion !== active.version);
  }

  /** Every transition of a request, oldest first (cctv-agent monitor). */
  transitions(db: Db, requestId: string): Array<{ at: number; from: string | null; to: string; actor: string; detail: string | null }> {
    return db
      .prepare<[string], { at: number; from_state: string | null; to_state: string; actor: string; detail: string | null }>(
        'SELECT at, from_state, to_state, actor, detail FROM retrain_transitions WHERE request_id = ? ORDER BY at, id',
      )
      .all(requestId)
      .map((row) => ({ at: row.at, from: row.from_state, to: row.to_state, actor: row.actor, detail: row.detail }));
  }
}
