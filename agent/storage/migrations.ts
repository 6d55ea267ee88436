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
];
