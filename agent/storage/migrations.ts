/**
 * Schema versions, applied in order and recorded in PRAGMA user_version. Never edit a
 * released migration: add the next one.
 */
export const migrations: ReadonlyArray<{ version: number; description: string; sql: string }> = [
  {
    version: 1,
    description: 'results, outbox, events',
    sql: `
      CREATE TABLE results (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        camera_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        captured_at INTEGER NOT NULL,
        model_id TEXT NOT NULL,
        model_version TEXT NOT NULL,
        task TEXT NOT NULL,
        vehicle_count INTEGER NOT NULL,
        vehicles TEXT NOT NULL,
        top TEXT,
        inference_ms REAL NOT NULL
      );
      CREATE INDEX results_captured_at ON results (captured_at);
      CREATE INDEX results_camera_time ON results (camera_id, captured_at);

      -- Store-and-forward: a row leaves only when the broker acknowledged it (QoS 1).
      CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        message_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        qos INTEGER NOT NULL DEFAULT 1,
        retain INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
      );

      CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT,
        code TEXT,
        detail TEXT
      );
      CREATE INDEX events_at ON events (at);
    `,
  },
  {
    version: 2,
    description: 'telemetry samples; outbox expiry; persistent counters',
    sql: `
      -- One row per telemetry sample: the published JSON, plus the columns charts and
      -- summaries read without parsing it.
      CREATE TABLE telemetry (
        id INTEGER PRIMARY KEY,
        message_id TEXT NOT NULL UNIQUE,
        at INTEGER NOT NULL,
        interval_s REAL NOT NULL,
        cpu_percent REAL,
        temperature_c REAL,
        memory_available_bytes INTEGER,
        disk_free_bytes INTEGER,
        rss_bytes INTEGER,
        fps REAL NOT NULL,
        inference_p50_ms REAL NOT NULL,
        inference_p95_ms REAL NOT NULL,
        outbox_depth INTEGER NOT NULL,
        database_bytes INTEGER NOT NULL,
        sample TEXT NOT NULL
      );
      CREATE INDEX telemetry_at ON telemetry (at);

      -- MQTT 5 message expiry: a message older than this is dropped instead of sent late.
      ALTER TABLE outbox ADD COLUMN expires_at INTEGER;

      -- Figures that must survive restarts (e.g. outbox messages dropped when it was full).
      CREATE TABLE counters (
        name TEXT PRIMARY KEY,
        value INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 3,
    description: 'monitoring: feedback, quality snapshots, alerts, retrain requests, evidence samples',
    sql: `
      -- Ground truth from reviewers, one row per verdict. feedback_id makes a resend idempotent;
      -- the result's camera, model and capture time are copied so a verdict outlives its result.
      CREATE TABLE feedback (
        id INTEGER PRIMARY KEY,
        feedback_id TEXT NOT NULL UNIQUE,
        received_at INTEGER NOT NULL,
        source TEXT NOT NULL,
        result_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        model_id TEXT NOT NULL,
        model_version TEXT NOT NULL,
        captured_at INTEGER NOT NULL,
        detection_index INTEGER,
        verdict TEXT NOT NULL,
        predicted_type TEXT,
        -- The detection's score: the label-free estimate calibrates scores on verdicts.
        score REAL,
        true_type TEXT,
        box TEXT
      );
      CREATE INDEX feedback_model_time ON feedback (camera_id, model_id, model_version, captured_at);
      CREATE INDEX feedback_result ON feedback (result_id);
      -- One verdict per detection: a later one (another feedback id) replaces it.
      CREATE UNIQUE INDEX feedback_detection ON feedback (result_id, detection_index) WHERE detection_index IS NOT NULL;

      -- What was published on <prefix>/<deviceId>/quality: the local quality log.
      CREATE TABLE quality (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        camera_id TEXT NOT NULL,
        model_id TEXT NOT NULL,
        model_version TEXT NOT NULL,
        labels INTEGER NOT NULL,
        precision REAL,
        sample TEXT NOT NULL
      );
      CREATE INDEX quality_at ON quality (at);
      CREATE INDEX quality_model_at ON quality (camera_id, model_id, model_version, at);

      CREATE TABLE alerts (
        id INTEGER PRIMARY KEY,
        alert_id TEXT NOT NULL UNIQUE,
        rule_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        model_id TEXT NOT NULL,
        model_version TEXT NOT NULL,
        state TEXT NOT NULL,
        raised_at INTEGER NOT NULL,
        cleared_at INTEGER,
        value REAL,
        detail TEXT
      );
      CREATE INDEX alerts_rule ON alerts (rule_id, camera_id, model_id, model_version, raised_at);

      CREATE TABLE retrain_requests (
        id INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL UNIQUE,
        camera_id TEXT NOT NULL,
        model_id TEXT NOT NULL,
        model_version TEXT NOT NULL,
        state TEXT NOT NULL,
        trigger TEXT NOT NULL,
        reason TEXT NOT NULL,
        raised_at INTEGER NOT NULL,
        state_at INTEGER NOT NULL,
        evidence TEXT NOT NULL
      );
      CREATE INDEX retrain_state ON retrain_requests (state, camera_id);
      -- Every transition of a request, with who made it: the audit trail.
      CREATE TABLE retrain_transitions (
        id INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        actor TEXT NOT NULL,
        detail TEXT
      );
      CREATE INDEX retrain_transitions_request ON retrain_transitions (request_id, at);

      -- Frames kept for retraining: a JPEG under <dataDir>/evidence and the detections with it.
      CREATE TABLE evidence (
        id INTEGER PRIMARY KEY,
        sample_id TEXT NOT NULL UNIQUE,
        result_id TEXT NOT NULL,
        camera_id TEXT NOT NULL,
        model_id TEXT NOT NULL,
        model_version TEXT NOT NULL,
        captured_at INTEGER NOT NULL,
        reason TEXT NOT NULL,
        file TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        detections TEXT NOT NULL,
        -- The camera's ROI [x, y, w, h] when it had one: the JPEG shows only that part.
        crop TEXT,
        disputed INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX evidence_created ON evidence (created_at);
      CREATE INDEX evidence_result ON evidence (result_id);
      CREATE INDEX evidence_prune ON evidence (disputed, created_at);

      -- The reference statistics each camera's windows are compared with, per model version:
      -- captured after the model became active, or shipped with it.
      CREATE TABLE drift_reference (
        camera_id TEXT NOT NULL,
        model_id TEXT NOT NULL,
        model_version TEXT NOT NULL,
        source TEXT NOT NULL,
        captured_from INTEGER NOT NULL,
        captured_to INTEGER NOT NULL,
        stats TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (camera_id, model_id, model_version)
      ) WITHOUT ROWID;
      -- Each compared window, as published on <prefix>/<deviceId>/drift: the drift log.
      CREATE TABLE drift_windows (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        camera_id TEXT NOT NULL,
        model_id TEXT NOT NULL,
        model_version TEXT NOT NULL,
        drifted INTEGER NOT NULL,
        drifted_features INTEGER NOT NULL,
        estimated_precision REAL,
        sample TEXT NOT NULL
      );
      CREATE INDEX drift_windows_at ON drift_windows (at);
    `,
  },
  // Model updates (agent/models/, docs/model-updates.md)
  {
    version: 4,
    description: 'model updates: the registry of model versions, its audit log, transfers in flight',
    sql: `
      -- Every model version this device has held, one row each; the state moves
      -- downloading -> downloaded -> verified -> active -> previous -> retired, or to rejected.
      CREATE TABLE model_versions (
        model_id TEXT NOT NULL,
        version TEXT NOT NULL,
        state TEXT NOT NULL,
        dir TEXT,
        bundle_sha256 TEXT,
        bundle_bytes INTEGER,
        key_id TEXT,
        source TEXT NOT NULL,
        error_code TEXT,
        created_at INTEGER NOT NULL,
        state_at INTEGER NOT NULL,
        activated_at INTEGER,
        PRIMARY KEY (model_id, version)
      ) WITHOUT ROWID;
      CREATE INDEX model_versions_state ON model_versions (state);
      -- The audit log: one row per lifecycle step of an update, from its trigger to its outcome.
      CREATE TABLE model_audit (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        update_id TEXT NOT NULL,
        model_id TEXT,
        version TEXT,
        step TEXT NOT NULL,
        trigger TEXT NOT NULL,
        outcome TEXT NOT NULL,
        code TEXT,
        detail TEXT
      );
      CREATE INDEX model_audit_at ON model_audit (at);
      CREATE INDEX model_audit_update ON model_audit (update_id, id);
      -- Transfers in flight (push over MQTT, pull over HTTP): what a restart resumes or cleans up.
      CREATE TABLE model_transfers (
        transfer_id TEXT PRIMARY KEY,
        update_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        trigger TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        chunk_size INTEGER NOT NULL,
        chunks INTEGER NOT NULL,
        received BLOB NOT NULL,
        url TEXT,
        activate INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  // counting (issue #18). Version 5, after the model registry's 4.
  {
    version: 5,
    description: 'counting: interval counts per line, direction and type; count comparisons with reference counters',
    sql: `
      -- One row per closed interval of a camera, zero counts included: the published payload.
      CREATE TABLE count_intervals (
        id INTEGER PRIMARY KEY,
        camera_id TEXT NOT NULL,
        start_at INTEGER NOT NULL,
        interval_s INTEGER NOT NULL,
        frames INTEGER NOT NULL,
        message_id TEXT NOT NULL,
        sample TEXT NOT NULL,
        UNIQUE (camera_id, start_at)
      );
      CREATE INDEX count_intervals_start ON count_intervals (start_at);
      -- The non-zero counts of each interval, one row per line, direction and vehicle type.
      -- (An id per row, as in every other table: retention prunes by id in small batches.)
      CREATE TABLE counts (
        id INTEGER PRIMARY KEY,
        camera_id TEXT NOT NULL,
        start_at INTEGER NOT NULL,
        line_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        vehicle_type TEXT NOT NULL,
        count INTEGER NOT NULL,
        UNIQUE (camera_id, start_at, line_id, direction, vehicle_type)
      );
      CREATE INDEX counts_start ON counts (start_at);
      -- Each comparison with an independent counter (the reference-counts command).
      CREATE TABLE count_errors (
        id INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        camera_id TEXT NOT NULL,
        from_at INTEGER NOT NULL,
        to_at INTEGER NOT NULL,
        reference_total INTEGER NOT NULL,
        agent_total INTEGER NOT NULL,
        total_error REAL,
        sample TEXT NOT NULL
      );
      CREATE INDEX count_errors_camera ON count_errors (camera_id, at);
    `,
  },
];
