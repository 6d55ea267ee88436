import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AgentError, errorMessage, systemErrorCode } from '../errors.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { STATUS_FILE_NAME, type StatusSnapshot } from '../telemetry/status-file.js';
import { TelemetryReader, bucketStarts, type TelemetryRow } from '../telemetry/telemetry-reader.js';
import { type DatabaseLocation, locateDatabase } from './database-location.js';
import { CountsReader } from '../counting/counts-reader.js';
import { MonitorReader } from '../monitor/monitor-reader.js';
import type { CliIo } from './io.js';
import { errorLines } from '../errors.js';
import { livenessOf } from './agent-liveness.js';
import { formatFollowLine, formatReport } from './telemetry-format.js';
import { type AgentState, latestJson, type ReportContext, reportJson } from './telemetry-report.js';

/**
 * A database that is missing or cannot be read: the same code `status` uses when there is no
 * agent to report on (ExitCode.STARTUP: what was asked for could not be started).
 */
const UNREADABLE = ExitCode.STARTUP;
const DEFAULT_SINCE = '1h';
/** The default bucket gives about this many rows of vehicles per type. */
const TARGET_BUCKETS = 12;
/** A bound on the output (a day by the minute fits; a year by the second does not). */
export const MAX_BUCKETS = 10_000;
const NICE_BUCKETS_MS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800].map(
  (s) => s * 1000,
);
/** --follow polls this often: a sample is written every telemetry.intervalSeconds (30 s by default). */
const FOLLOW_POLL_MS = 1000;

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

function usage(message: string): AgentError {
  return new AgentError('USAGE', message);
}

/** `15m`, `1h`, `2d`, `1h30m`, `90s` -> milliseconds; undefined when it is not a duration. */
export function parseDuration(text: string): number | undefined {
  if (!/^(\d+(\.\d+)?[smhdw])+$/.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)) total += Number(match[1]) * UNIT_MS[match[2]!]!;
  return total > 0 ? total : undefined;
}

/**
 * A duration ago (`1h`), `now`, or an ISO 8601 date or time. A time without an offset is UTC,
 * like everything this command prints.
 */
export function parseInstant(text: string, now: number, option: string): number {
  if (text === 'now') return now;
  const ago = parseDuration(text);
  if (ago !== undefined) return now - ago;
  if (/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(text)) {
    const normalized = text.replace(' ', 'T');
    const hasOffset = /(Z|[+-]\d{2}:?\d{2})$/.test(normalized) && normalized.includes('T');
    const at = Date.parse(normalized.includes('T') && !hasOffset ? `${normalized}Z` : normalized);
    if (Number.isFinite(at)) return at;
  }
  throw usage(`${option} ${JSON.stringify(text)}: give a duration ago (15m, 1h, 2d, 1h30m), "now", or an ISO time (2026-11-27T12:00Z)`);
}

/** The smallest round interval that splits the range into about TARGET_BUCKETS rows. */
export function defaultBucketMs(rangeMs: number): number {
  const wanted = rangeMs / TARGET_BUCKETS;
  return NICE_BUCKETS_MS.find((step) => step >= wanted) ?? NICE_BUCKETS_MS.at(-1)!;
}

export interface TelemetryOptions {
  since: number;
  until: number;
  /** --since was given (with --follow: print every sample since then first). */
  sinceGiven: boolean;
  bucketMs: number;
  cameraId: string | undefined;
  json: boolean;
  follow: boolean;
  config: string | undefined;
  dataDir: string | undefined;
}

export function parseTelemetryArgs(argv: string[], now: number): TelemetryOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        since: { type: 'string' },
        until: { type: 'string' },
        camera: { type: 'string' },
        bucket: { type: 'string' },
        json: { type: 'boolean' },
        follow: { type: 'boolean', short: 'f' },
        config: { type: 'string', short: 'c' },
        'data-dir': { type: 'string' },
      },
    }));
  } catch (error) {
    // node:util's parse errors carry ERR_PARSE_ARGS_* codes; anything else is a bug, not usage.
    if (systemErrorCode(error)?.startsWith('ERR_PARSE_ARGS_')) throw usage(`telemetry: ${errorMessage(error)}`);
    throw error;
  }
  const text = (name: string): string | undefined => values[name] as string | undefined;
  const since = parseInstant(text('since') ?? DEFAULT_SINCE, now, '--since');
  const until = text('until') === undefined ? now : parseInstant(text('until')!, now, '--until');
  if (values['follow'] && text('until') !== undefined) throw usage('--until cannot be combined with --follow (it follows new samples)');
  if (since >= until) throw usage(`--since (${new Date(since).toISOString()}) must be before --until (${new Date(until).toISOString()})`);
  let bucketMs = defaultBucketMs(until - since);
  if (text('bucket') !== undefined) {
    const parsed = parseDuration(text('bucket')!);
    if (parsed === undefined || parsed < 1000) throw usage(`--bucket ${JSON.stringify(text('bucket'))}: give a duration of at least 1s (30s, 5m, 1h)`);
    bucketMs = parsed;
  }
  const buckets = bucketStarts(since, until, bucketMs).length;
  if (buckets > MAX_BUCKETS) throw usage(`--bucket ${text('bucket')} makes ${buckets} rows over the range (at most ${MAX_BUCKETS}): choose a larger bucket`);
  const cameraId = text('camera');
  if (cameraId === '') throw usage('--camera needs a camera id');
  return {
    since,
    until,
    sinceGiven: text('since') !== undefined,
    bucketMs,
    cameraId,
    json: values['json'] === true,
    follow: values['follow'] === true,
    config: text('config'),
    dataDir: text('data-dir'),
  };
}

function locate(options: TelemetryOptions, io: CliIo): DatabaseLocation {
  return locateDatabase(options, io.env);
}

/** What <dataDir>/status.json says about the agent, read the way `status` reads it. */
export function readAgentState(dataDir: string, now: number): AgentState & { deviceId: string | null; model: StatusSnapshot['model'] } {
  let snapshot: StatusSnapshot;
  try {
    snapshot = JSON.parse(fs.readFileSync(path.join(dataDir, STATUS_FILE_NAME), 'utf8')) as StatusSnapshot;
  } catch (error) {
    // No status file, or a half-written one from an old agent: the header says "unknown".
    if (systemErrorCode(error) !== undefined || error instanceof SyntaxError)
      return { state: 'unknown', pid: null, statusWrittenAt: null, deviceId: null, model: undefined };
    throw error;
  }
  const state: AgentState['state'] = livenessOf(snapshot, now);
  return { state, pid: snapshot.pid, statusWrittenAt: snapshot.writtenAt, deviceId: snapshot.deviceId, model: snapshot.model };
}

export interface TelemetryCommandDeps {
  /** Ends --follow; without it SIGINT and SIGTERM do. */
  signal?: AbortSignal;
  pollMs?: number;
  now?: () => number;
}

function report(io: CliIo, error: unknown): number {
  for (const line of errorLines(error)) io.err.write(`${line}\n`);
  if (!(error instanceof AgentError)) return ExitCode.FATAL;
  if (error.code === 'STORAGE_READ_FAILED') return UNREADABLE;
  return ExitCode.CONFIG;
}

/**
 * `cctv-agent telemetry [--since D|ISO] [--until D|ISO] [--camera ID] [--bucket D] [--json]
 * [--follow] [--config FILE | --data-dir DIR]`: the local telemetry log, read-only.
 */
export async function telemetryCommand(argv: string[], io: CliIo, deps: TelemetryCommandDeps = {}): Promise<number> {
  const now = deps.now ?? Date.now;
  let options: TelemetryOptions;
  let location: DatabaseLocation;
  try {
    options = parseTelemetryArgs(argv, now());
    location = locate(options, io);
  } catch (error) {
    const code = report(io, error);
    if (code === ExitCode.CONFIG && !(error instanceof AgentError && error.code === 'USAGE')) {
      io.err.write('cctv-agent: give --data-dir DIR to read a database without a config\n');
    }
    return code;
  }
  try {
    return options.follow ? await follow(options, location, io, deps) : summary(options, location, io, now());
  } catch (error) {
    return report(io, error);
  }
}

function summary(options: TelemetryOptions, location: DatabaseLocation, io: CliIo, now: number): number {
  const reader = TelemetryReader.open(location.file)!;
  try {
    const result = reader.summarize({ since: options.since, until: options.until, bucketMs: options.bucketMs, cameraId: options.cameraId });
    const { deviceId, model: _model, ...agent } = readAgentState(location.dataDir, now);
    const context: ReportContext = {
      deviceId: location.deviceId ?? deviceId ?? result.latest?.sample?.deviceId ?? null,
      file: location.file,
      schemaVersion: reader.schemaVersion,
      databaseBytes: reader.sizeBytes(),
      readMode: reader.mode,
      agent,
      since: options.since,
      until: options.until,
      bucketMs: options.bucketMs,
      cameraId: options.cameraId,
      now,
      // Databases of agents before the monitoring schema (v3) have no quality log.
      quality: (reader.schemaVersion >= 3 ? new MonitorReader(reader.database).latestQuality() : []).map((entry) => ({
        cameraId: entry.cameraId,
        model: entry.model,
        at: entry.at,
        labels: entry.windows.labels.overall.labelled,
        precision: entry.windows.labels.overall.precision,
      })),
      counts: CountsReader.has(reader.database)
        ? new CountsReader(reader.database)
            .totals(options.since, options.until)
            .filter((entry) => options.cameraId === undefined || entry.cameraId === options.cameraId)
        : [],
    };
    io.out.write(options.json ? `${JSON.stringify(reportJson(context, result), null, 2)}\n` : formatReport(context, result));
    return ExitCode.OK;
  } finally {
    reader.close();
  }
}

function waitOrAbort(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Prints the latest sample (or every sample since --since), then each new one. Each poll opens
 * the file, runs one short query and closes it again: nothing is held between polls, so the
 * daemon can checkpoint, restart or be upgraded underneath.
 */
async function follow(options: TelemetryOptions, location: DatabaseLocation, io: CliIo, deps: TelemetryCommandDeps): Promise<number> {
  const print = (row: TelemetryRow): void => {
    io.out.write(options.json ? `${JSON.stringify(latestJson(row))}\n` : `${formatFollowLine(row)}\n`);
  };
  const first = TelemetryReader.open(location.file)!;
  if (!options.json)
    io.out.write(`following ${location.file}, times UTC from ${new Date((deps.now ?? Date.now)()).toISOString().slice(0, 10)} (Ctrl-C to stop)\n`);
  let lastId: number;
  try {
    lastId = first.lastSampleId();
    const initial = options.sinceGiven ? first.samplesBetween(options.since, Number.MAX_SAFE_INTEGER) : [first.latest()].filter((row) => row !== undefined);
    for (const row of initial) if (row.id <= lastId) print(row);
  } finally {
    first.close();
  }

  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  const onOutputError = (error: unknown): void => {
    // A closed pipe (| head) ends the follow; anything else is reported first.
    if (systemErrorCode(error) !== 'EPIPE') io.err.write(`cctv-agent: output failed: ${errorMessage(error)}\n`);
    stop.abort();
  };
  deps.signal?.addEventListener('abort', onSignal, { once: true });
  if (!deps.signal) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  io.out.on('error', onOutputError);
  let lastProblem: string | undefined;
  try {
    while (!stop.signal.aborted) {
      await waitOrAbort(deps.pollMs ?? FOLLOW_POLL_MS, stop.signal);
      if (stop.signal.aborted) break;
      try {
        // allowCopy false: a stopped agent cannot add samples, so there is nothing to copy for.
        const reader = TelemetryReader.open(location.file, { allowCopy: false });
        if (reader === undefined) continue;
        try {
          const newest = reader.lastSampleId();
          // A smaller id than seen: the file was replaced (restored); go on from its end.
          if (newest < lastId) lastId = newest;
          for (const row of reader.samplesAfter(lastId)) {
            print(row);
            lastId = row.id;
          }
        } finally {
          reader.close();
        }
        lastProblem = undefined;
      } catch (error) {
        if (!(error instanceof AgentError)) throw error;
        // Keep following (the file may come back, the agent may restart): say so once per problem.
        const problem = errorLines(error).join('\n');
        if (problem !== lastProblem) io.err.write(`${problem} (still following)\n`);
        lastProblem = problem;
      }
    }
  } finally {
    deps.signal?.removeEventListener('abort', onSignal);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    io.out.removeListener('error', onOutputError);
  }
  return ExitCode.OK;
}
