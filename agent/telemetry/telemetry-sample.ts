import { z } from 'zod';
import { sensorReadingSchema } from './device-sensors.js';

/**
 * One telemetry sample: stored in the `telemetry` table (as this JSON, plus a few columns for
 * fast charts) and published on <prefix>/<deviceId>/telemetry. docs/mqtt.md carries the JSON
 * Schema generated from this schema, so the two cannot drift apart.
 */
export const cameraTelemetrySchema = z.object({
  id: z.string().describe('Camera id.'),
  state: z.string().describe('starting, streaming, stalled, backoff, ended, failed-config or stopped.'),
  framesIn: z.number().int().nonnegative().describe('Frames delivered by ffmpeg since the agent started.'),
  framesOut: z.number().int().nonnegative().describe('Frames inferred since the agent started.'),
  dropped: z.number().int().nonnegative().describe('Frames replaced in the slot before the model took them (latest wins).'),
  reconnects: z.number().int().nonnegative().describe('ffmpeg restarts since the agent started.'),
  decodeFps: z.number().nonnegative().describe('Frames per second from ffmpeg over the last seconds.'),
  lastError: z.string().nullable().describe('Error code of the last failure, if any.'),
});

export const telemetrySampleSchema = z.object({
  id: z.string().describe('Unique message id (UUID): the deduplication key.'),
  deviceId: z.string(),
  at: z.string().describe('When the sample was taken (ISO 8601, UTC).'),
  intervalSeconds: z.number().positive().describe('Length of the window the pipeline figures cover.'),
  model: z.object({ id: z.string(), version: z.string() }).nullable().describe('The model serving when the sample was taken.'),
  system: z.object({
    cpuLoadPercent: z.number().nullable().describe('Whole-machine CPU load, 0..100.'),
    cpuPerCorePercent: z.array(z.number()).describe('CPU load per core, 0..100.'),
    temperatureC: z.number().nullable().describe('Main CPU temperature; null where the hardware does not report it.'),
    memoryTotalBytes: z.number().int().nonnegative(),
    memoryAvailableBytes: z.number().int().nonnegative(),
    diskFreeBytes: z.number().int().nullable().describe('Free space of the file system holding dataDir.'),
    diskTotalBytes: z.number().int().nullable(),
    uptimeSeconds: z.number().nonnegative().describe('Machine uptime.'),
    agentUptimeSeconds: z.number().nonnegative(),
    agentRssBytes: z.number().int().nonnegative().describe('Resident memory of the agent process.'),
    sensors: z
      .array(sensorReadingSchema)
      .optional()
      .describe("The box's hwmon and IIO sensors (temperature, humidity, pressure, accelerometer, gyroscope, magnetometer); empty where it has none."),
  }),
  pipeline: z.object({
    fps: z.number().nonnegative().describe('Results per second over the interval, all cameras.'),
    results: z.number().int().nonnegative().describe('Results in the interval.'),
    inferenceP50Ms: z.number().nonnegative(),
    inferenceP95Ms: z.number().nonnegative(),
    vehicles: z.record(z.string(), z.number().int().nonnegative()).describe('Vehicles seen per type in the interval.'),
    cameras: z.array(cameraTelemetrySchema),
    pendingWrites: z.number().int().nonnegative().describe('Results waiting in memory for the next database flush.'),
    outboxDepth: z.number().int().nonnegative().describe('Messages waiting for the broker.'),
    outboxDropped: z.number().int().nonnegative().describe('Messages dropped from a full outbox since the agent started (oldest first).'),
    databaseBytes: z.number().int().nonnegative().describe('Database file plus its WAL.'),
    storageDegraded: z.boolean().describe('true while the disk is full or the database refuses writes.'),
  }),
});

export type TelemetrySample = z.output<typeof telemetrySampleSchema>;
export type CameraTelemetry = z.output<typeof cameraTelemetrySchema>;
