import { z } from 'zod';
import { telemetryFields, type ReadMode, type TelemetryField, type TelemetryRow, type TelemetrySummary } from '../telemetry/telemetry-reader.js';
import { telemetrySampleSchema } from '../telemetry/telemetry-sample.js';

/* `cctv-agent telemetry --json`: the document's schema and its making; telemetry-format.ts has the human output. */

export interface AgentState {
  /** From <dataDir>/status.json: unknown when there is none (the agent never ran there). */
  state: 'running' | 'stopped' | 'killed' | 'hung' | 'unknown';
  pid: number | null;
  statusWrittenAt: string | null;
}

export interface ReportContext {
  deviceId: string | null;
  file: string;
  schemaVersion: number;
  databaseBytes: number;
  readMode: ReadMode;
  agent: AgentState;
  since: number;
  until: number;
  bucketMs: number;
  cameraId: string | undefined;
  now: number;
  /** The latest measured quality of each camera and model (the monitor's log, docs/monitoring.md). */
  quality: QualityLine[];
  /** Vehicles counted on each camera's lines in the range (docs/counting.md); empty without counting. */
  counts: CountsLine[];
}

export interface CountsLine {
  cameraId: string;
  lineId: string;
  direction: string;
  count: number;
}

export interface QualityLine {
  cameraId: string;
  model: { id: string; version: string };
  at: string;
  labels: number;
  precision: { value: number; low: number; high: number; n: number } | null;
}

const qualityLineSchema = z.object({
  cameraId: z.string(),
  model: z.object({ id: z.string(), version: z.string() }),
  at: z.string(),
  labels: z.number().int().nonnegative(),
  precision: z.object({ value: z.number(), low: z.number(), high: z.number(), n: z.number().int() }).nullable(),
});

const statsSchema = z.object({ min: z.number(), median: z.number(), max: z.number(), count: z.number().int().positive() });
/** The telemetry fields in their report order. */
export const fieldNames = Object.keys(telemetryFields) as TelemetryField[];
const countsSchema = z.record(z.string(), z.number().int().nonnegative());

/** The `--json` document: one object on stdout. docs/operations.md describes it. */
export const telemetryReportSchema = z.object({
  deviceId: z.string().nullable(),
  database: z.object({ file: z.string(), schemaVersion: z.number().int(), bytes: z.number().int().nonnegative(), readMode: z.enum(['direct', 'memory-copy']) }),
  agent: z.object({
    state: z.enum(['running', 'stopped', 'killed', 'hung', 'unknown']),
    pid: z.number().int().nullable(),
    statusWrittenAt: z.string().nullable(),
  }),
  range: z.object({ since: z.iso.datetime(), until: z.iso.datetime(), cameraId: z.string().nullable(), bucketSeconds: z.number().positive() }),
  samples: z.number().int().nonnegative(),
  latest: z
    .object({
      at: z.iso.datetime(),
      intervalSeconds: z.number(),
      values: z.object(Object.fromEntries(fieldNames.map((name) => [name, z.number().nullable()])) as Record<TelemetryField, z.ZodNullable<z.ZodNumber>>),
      sample: telemetrySampleSchema.nullable(),
    })
    .nullable(),
  fields: z.object(Object.fromEntries(fieldNames.map((name) => [name, statsSchema.nullable()])) as Record<TelemetryField, z.ZodNullable<typeof statsSchema>>),
  vehicles: z.object({
    results: z.number().int().nonnegative(),
    totals: countsSchema,
    cameras: countsSchema,
    unreadableRows: z.number().int().nonnegative(),
    buckets: z.array(z.object({ start: z.iso.datetime(), results: z.number().int().nonnegative(), vehicles: countsSchema })),
  }),
  quality: z.array(qualityLineSchema).describe('The latest measured precision (count window) of each camera and model: cctv-agent monitor has the rest.'),
  counts: z
    .array(z.object({ cameraId: z.string(), lineId: z.string(), direction: z.string(), count: z.number().int().nonnegative() }))
    .describe('Vehicles counted per camera, line and direction in the range: cctv-agent counts has them per type and interval.'),
  events: z.object({
    total: z.number().int().nonnegative(),
    recent: z.array(
      z.object({ at: z.iso.datetime(), kind: z.string(), subject: z.string().nullable(), code: z.string().nullable(), detail: z.string().nullable() }),
    ),
  }),
});
export type TelemetryReport = z.output<typeof telemetryReportSchema>;

const iso = (ms: number): string => new Date(ms).toISOString();

export function latestJson(row: TelemetryRow): NonNullable<TelemetryReport['latest']> {
  return { at: iso(row.at), intervalSeconds: row.intervalSeconds, values: row.values, sample: row.sample };
}

export function reportJson(context: ReportContext, summary: TelemetrySummary): TelemetryReport {
  return {
    deviceId: context.deviceId,
    database: { file: context.file, schemaVersion: context.schemaVersion, bytes: context.databaseBytes, readMode: context.readMode },
    agent: context.agent,
    range: { since: iso(context.since), until: iso(context.until), cameraId: context.cameraId ?? null, bucketSeconds: context.bucketMs / 1000 },
    samples: summary.samples,
    latest: summary.latest ? latestJson(summary.latest) : null,
    fields: summary.fields,
    vehicles: { ...summary.vehicles, buckets: summary.vehicles.buckets.map((bucket) => ({ ...bucket, start: iso(bucket.start) })) },
    events: { total: summary.events.total, recent: summary.events.recent.map((event) => ({ ...event, at: iso(event.at) })) },
    quality: context.quality,
    counts: context.counts,
  };
}
