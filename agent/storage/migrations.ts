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
];
