import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AgentError, errorMessage, systemErrorCode } from '../errors.js';
import { countVehicleTypes, parseSample } from './telemetry-row-parsing.js';
import type { TelemetrySample } from './telemetry-sample.js';

type Db = Database.Database;

/**
 * The numeric telemetry columns, by the name the JSON output uses, in the order shown. The
 * columns exist so summaries never parse the sample JSON (migration 2).
 */
export const telemetryFields = {
  cpuPercent: 'cpu_percent',
  temperatureC: 'temperature_c',
  memoryAvailableBytes: 'memory_available_bytes',
  diskFreeBytes: 'disk_free_bytes',
  rssBytes: 'rss_bytes',
  fps: 'fps',
  inferenceP50Ms: 'inference_p50_ms',
  inferenceP95Ms: 'inference_p95_ms',
  outboxDepth: 'outbox_depth',
  databaseBytes: 'database_bytes',
} as const;
export type TelemetryField = keyof typeof telemetryFields;
const FIELD_NAMES = Object.keys(telemetryFields) as TelemetryField[];
const FIELD_COLUMNS = FIELD_NAMES.map((name) => telemetryFields[name]).join(', ');

/** The first schema with the telemetry table (agent/storage/migrations.ts). */
export const MIN_SCHEMA_VERSION = 2;
/**
 * A daemon checkpoint (TRUNCATE on stop) briefly takes the locks a reader needs: wait that
 * long rather than fail. Readers never hold a lock the writer waits for longer than a query.
 */
const BUSY_TIMEOUT_MS = 2000;
/** Rows per statement of a range scan: a few milliseconds of reading each. */
const CHUNK_ROWS = 5000;
/** Above this, a stopped agent's database is not copied into memory (see TelemetryReader.open). */
export const MEMORY_COPY_MAX_BYTES = 256 * 1024 * 1024;

export interface TelemetryRow {
  id: number;
  at: number;
  intervalSeconds: number;
  values: Record<TelemetryField, number | null>;
  /** The stored sample JSON, or null when it does not match telemetrySampleSchema. */
  sample: TelemetrySample | null;
}

export interface FieldStats {
  min: number;
  median: number;
  max: number;
  count: number;
}
export interface VehicleBucket {
  start: number;
  results: number;
  vehicles: Record<string, number>;
}
export interface EventRow {
  at: number;
  kind: string;
  subject: string | null;
  code: string | null;
  detail: string | null;
}

export interface SummaryQuery {
  since: number;
  until: number;
  bucketMs: number;
  cameraId?: string | undefined;
  eventLimit?: number;
}

export interface TelemetrySummary {
  samples: number;
  /** The newest sample before `until`, even when it is older than `since`. */
  latest: TelemetryRow | undefined;
  fields: Record<TelemetryField, FieldStats | null>;
  /** Every sample in the range, oldest first: at and the field values, for charts. */
  series: Array<{ at: number; values: Record<TelemetryField, number | null> }>;
  vehicles: {
    results: number;
    totals: Record<string, number>;
    cameras: Record<string, number>;
    buckets: VehicleBucket[];
    /** Result rows whose vehicles JSON could not be read (counted as results, not as vehicles). */
    unreadableRows: number;
  };
  events: { total: number; recent: EventRow[] };
}

export type ReadMode = 'direct' | 'memory-copy';

function readFailed(file: string, error: unknown, what = 'reading'): AgentError {
  if (error instanceof AgentError) return error;
  const code = systemErrorCode(error);
  return new AgentError('STORAGE_READ_FAILED', `${what} ${file} failed${code ? ` (${code})` : ''}: ${errorMessage(error)}`, { cause: error });
}

/** Bucket starts aligned to multiples of bucketMs since the epoch (UTC), covering [since, until). */
export function bucketStarts(since: number, until: number, bucketMs: number): number[] {
  const starts: number[] = [];
  for (let start = Math.floor(since / bucketMs) * bucketMs; start < until; start += bucketMs) starts.push(start);
  return starts;
}

export function median(sorted: ReadonlyArray<number>): number {
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

type RawTelemetry = [number, number, number, ...Array<number | null>];

function toRow(raw: unknown[], sampleJson: string | undefined): TelemetryRow {
  const [id, at, interval, ...rest] = raw as RawTelemetry;
  const values = {} as Record<TelemetryField, number | null>;
  FIELD_NAMES.forEach((name, index) => {
    values[name] = (rest[index] as number | null | undefined) ?? null;
  });
  return { id, at, intervalSeconds: interval, values, sample: sampleJson === undefined ? null : parseSample(sampleJson) };
}

/**
 * A read-only view of an agent's database. No read transaction outlives one statement, and
 * the scans over a range run in chunks of CHUNK_ROWS (keyset pagination on the time index), so
 * no statement holds a WAL snapshot for long: with one long statement after another, a
 * reader was measured holding the daemon's TRUNCATE checkpoint back for up to 2 s.
 */
export class TelemetryReader {
  private constructor(
    readonly file: string,
    private readonly db: Db,
    readonly mode: ReadMode,
    readonly schemaVersion: number,
  ) {}

  /** The read-only connection, for other read-only views of the same database (cctv-agent monitor). */
  get database(): Db {
    return this.db;
  }

  /**
   * Opens `file` with readonly and fileMustExist. In WAL mode a reader needs the -wal and -shm
   * files: while the agent runs they exist and any user who can read them can read (SQLite
   * maps a read-only -shm). When the agent is stopped they are gone, and SQLite must create
   * them: a user who cannot write the directory (an operator in the service's group) gets
   * SQLITE_READONLY_DIRECTORY. The stopped agent checkpointed everything into the main file,
   * so that file alone is complete: it is then read into memory (up to MEMORY_COPY_MAX_BYTES),
   * unless `allowCopy` is false, in which case undefined is returned (nothing can be written
   * while there is no WAL, so a poller has nothing new to read).
   */
  static open(file: string, options: { allowCopy?: boolean } = {}): TelemetryReader | undefined {
    try {
      fs.accessSync(file, fs.constants.R_OK);
    } catch (error) {
      if (systemErrorCode(error) === 'ENOENT') {
        throw new AgentError('STORAGE_READ_FAILED', `no database at ${file}: no agent has run with this data directory (or storage.fileName differs)`, {
          cause: error,
        });
      }
      throw new AgentError(
        'STORAGE_READ_FAILED',
        `cannot read ${file} (${systemErrorCode(error) ?? 'refused'}): run as the agent's user, root, or a member of the agent's group`,
        { cause: error },
      );
    }
    let db: Db;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true, timeout: BUSY_TIMEOUT_MS });
    } catch (error) {
      throw readFailed(file, error, 'opening');
    }
    try {
      return new TelemetryReader(file, db, 'direct', checkSchema(file, db));
    } catch (error) {
      db.close();
      if (!walFilesMissing(file, error)) throw readFailed(file, error, 'opening');
      if (options.allowCopy === false) return undefined;
      return TelemetryReader.openCopy(file, error);
    }
  }

  private static openCopy(file: string, cause: unknown): TelemetryReader {
    const size = fs.statSync(file).size;
    if (size > MEMORY_COPY_MAX_BYTES) {
      throw new AgentError(
        'STORAGE_READ_FAILED',
        `cannot read ${file}: the agent is stopped, and reading its WAL database needs ${path.basename(file)}-wal and -shm created in ${path.dirname(file)}, ` +
          `which this user cannot write (${systemErrorCode(cause) ?? 'refused'}); the file is too large (${Math.round(size / 1048576)} MiB) to copy into memory. ` +
          "Run as the agent's user (sudo -u cctv-agent ...) or root, or while the agent runs",
        { cause },
      );
    }
    const image = fs.readFileSync(file);
    // The agent may have started while we copied: then the WAL exists and a direct read works.
    if (fs.existsSync(`${file}-wal`)) return TelemetryReader.open(file, { allowCopy: false }) ?? TelemetryReader.openCopy(file, cause);
    // Header bytes 18-19 say WAL (2): in memory there is no WAL, so mark the private copy as a
    // rollback-journal file (1), or SQLite refuses to open the image.
    if (image.length >= 20 && image[18] === 2 && image[19] === 2) image[18] = image[19] = 1;
    let db: Db;
    try {
      db = new Database(image, { readonly: true });
    } catch (error) {
      throw readFailed(file, error, 'opening a copy of');
    }
    try {
      return new TelemetryReader(file, db, 'memory-copy', checkSchema(file, db));
    } catch (error) {
      db.close();
      throw readFailed(file, error, 'reading a copy of');
    }
  }

  close(): void {
    this.db.close();
  }

  /** The database file plus its WAL (what the disk holds for it). */
  sizeBytes(): number {
    let bytes = 0;
    for (const name of [this.file, `${this.file}-wal`]) if (fs.existsSync(name)) bytes += fs.statSync(name).size;
    return bytes;
  }

  latest(until = Number.MAX_SAFE_INTEGER): TelemetryRow | undefined {
    const raw = this.query(
      () =>
        this.db.prepare(`SELECT id, at, interval_s, ${FIELD_COLUMNS}, sample FROM telemetry WHERE at < ? ORDER BY at DESC, id DESC LIMIT 1`).raw().get(until) as
          | unknown[]
          | undefined,
    );
    return raw === undefined ? undefined : toRow(raw.slice(0, -1), raw.at(-1) as string);
  }

  /** Samples written after the one with `afterId`, in insertion order (for --follow). */
  samplesAfter(afterId: number, limit = 1000): TelemetryRow[] {
    const rows = this.query(
      () =>
        this.db
          .prepare(`SELECT id, at, interval_s, ${FIELD_COLUMNS}, sample FROM telemetry WHERE id > ? ORDER BY id LIMIT ?`)
          .raw()
          .all(afterId, limit) as unknown[][],
    );
    return rows.map((raw) => toRow(raw.slice(0, -1), raw.at(-1) as string));
  }

  /** Samples with since <= at < until, oldest first. */
  samplesBetween(since: number, until: number, limit = 100_000): TelemetryRow[] {
    const rows = this.query(
      () =>
        this.db
          .prepare(`SELECT id, at, interval_s, ${FIELD_COLUMNS}, sample FROM telemetry WHERE at >= ? AND at < ? ORDER BY at, id LIMIT ?`)
          .raw()
          .all(since, until, limit) as unknown[][],
    );
    return rows.map((raw) => toRow(raw.slice(0, -1), raw.at(-1) as string));
  }

  /** The highest sample id (0 when there is none): where --follow starts. */
  lastSampleId(): number {
    return this.query(() => (this.db.prepare('SELECT coalesce(max(id), 0) AS id FROM telemetry').get() as { id: number }).id);
  }

  summarize(query: SummaryQuery): TelemetrySummary {
    const { since, until } = query;
    const series: TelemetrySummary['series'] = [];
    const statement = this.db.prepare(`SELECT at, id, ${FIELD_COLUMNS} FROM telemetry WHERE (at, id) > (?, ?) AND at < ? ORDER BY at, id LIMIT ?`).raw();
    this.scan(statement, [], since, until, ([at, , ...rest]) => {
      const values = {} as Record<TelemetryField, number | null>;
      FIELD_NAMES.forEach((name, index) => {
        values[name] = (rest[index] as number | null | undefined) ?? null;
      });
      series.push({ at: at as number, values });
    });
    const fields = {} as Record<TelemetryField, FieldStats | null>;
    for (const name of FIELD_NAMES) {
      const values: number[] = [];
      for (const point of series) if (point.values[name] !== null) values.push(point.values[name]!);
      values.sort((a, b) => a - b);
      fields[name] = values.length === 0 ? null : { min: values[0]!, median: median(values), max: values.at(-1)!, count: values.length };
    }
    return {
      samples: series.length,
      latest: this.latest(until),
      fields,
      series,
      vehicles: this.vehicles(query),
      events: this.events(since, until, query.eventLimit ?? 20),
    };
  }

  private vehicles(query: SummaryQuery): TelemetrySummary['vehicles'] {
    const camera = query.cameraId;
    const statement = this.db
      .prepare(
        `SELECT captured_at, id, camera_id, vehicle_count, vehicles FROM results
       WHERE ${camera === undefined ? '' : 'camera_id = ? AND '}(captured_at, id) > (?, ?) AND captured_at < ? ORDER BY captured_at, id LIMIT ?`,
      )
      .raw();
    const buckets: VehicleBucket[] = bucketStarts(query.since, query.until, query.bucketMs).map((start) => ({ start, results: 0, vehicles: {} }));
    const firstStart = buckets[0]?.start ?? query.since;
    const cameras: Record<string, number> = {};
    let unreadableRows = 0;
    this.scan(statement, camera === undefined ? [] : [camera], query.since, query.until, (row) => {
      const [at, , cameraId, count, json] = row as [number, number, string, number, string];
      const bucket = buckets[Math.floor((at - firstStart) / query.bucketMs)]!;
      bucket.results += 1;
      cameras[cameraId] = (cameras[cameraId] ?? 0) + 1;
      if (count > 0 && !countVehicleTypes(json, count, bucket.vehicles)) unreadableRows += 1;
    });
    const totals: Record<string, number> = {};
    let results = 0;
    for (const bucket of buckets) {
      for (const [type, count] of Object.entries(bucket.vehicles)) totals[type] = (totals[type] ?? 0) + count;
      results += bucket.results;
    }
    return { results, totals, cameras, buckets, unreadableRows };
  }

  /**
   * Visits every row with since <= time < until, oldest first, CHUNK_ROWS per statement. The
   * statement selects time and id first and takes (...leading, afterTime, afterId, until, limit).
   */
  private scan(statement: Database.Statement, leading: unknown[], since: number, until: number, visit: (row: unknown[]) => void): void {
    // (time, id) > (since, 0) is every row from since on: ids start at 1.
    let after: [number, number] = [since, 0];
    for (;;) {
      const rows = this.query(() => statement.all(...leading, ...after, until, CHUNK_ROWS) as unknown[][]);
      for (const row of rows) visit(row);
      if (rows.length < CHUNK_ROWS) return;
      const last = rows[rows.length - 1]!;
      after = [last[0] as number, last[1] as number];
    }
  }

  private events(since: number, until: number, limit: number): TelemetrySummary['events'] {
    return this.query(() => {
      const total = (this.db.prepare('SELECT count(*) AS n FROM events WHERE at >= ? AND at < ?').get(since, until) as { n: number }).n;
      const recent = (
        this.db
          .prepare('SELECT at, kind, subject, code, detail FROM events WHERE at >= ? AND at < ? ORDER BY at DESC, id DESC LIMIT ?')
          .all(since, until, limit) as EventRow[]
      ).reverse();
      return { total, recent };
    });
  }

  private query<T>(run: () => T): T {
    try {
      return run();
    } catch (error) {
      throw readFailed(this.file, error);
    }
  }
}

/** Reads the schema version (which opens the WAL files) and refuses a database without telemetry. */
function checkSchema(file: string, db: Db): number {
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((row) => row.name));
  if (!tables.has('results') || !tables.has('events')) {
    throw new AgentError('STORAGE_READ_FAILED', `${file} is not a cctv-agent database (schema version ${version}, no results table)`);
  }
  if (version < MIN_SCHEMA_VERSION || !tables.has('telemetry')) {
    throw new AgentError(
      'STORAGE_READ_FAILED',
      `${file} has schema version ${version}, which has no telemetry table: it was last opened by an older agent. ` +
        'Start the current agent once (it migrates the file on start), then read it again',
    );
  }
  return version;
}

/** The failure of a reader that had to create -wal/-shm and could not (see TelemetryReader.open). */
function walFilesMissing(file: string, error: unknown): boolean {
  const code = systemErrorCode(error);
  const cannotCreate = code === 'SQLITE_READONLY_DIRECTORY' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY_CANTINIT';
  return cannotCreate && !fs.existsSync(`${file}-wal`);
}
