import os from 'node:os';
import { z } from 'zod';
import { countingLinesSchema, countingSchema } from './counting-schema.js';
import { modelUpdatesSchema } from './model-updates-schema.js';
import { monitorSchema } from './monitor-schema.js';

/**
 * The one source of the agent's configuration: defaults, types and validation.
 * The AgentConfig type is derived from it; environment overrides, redaction and the
 * generated docs walk this same schema. A field marked `secret` is never printed or logged.
 */

const secret = () => z.string().min(1).meta({ secret: true });

const identifier = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/, {
  error: 'must be 1-63 letters, digits, "-" or "_", starting with a letter or digit',
});

const sourceSchemes = ['rtsp:', 'rtsps:', 'http:', 'https:', 'file:'];

/** A camera source: an rtsp(s)://, http(s):// (MJPEG) or file:// URL, or a plain file path. */
export const sourceUrl = z
  .string()
  .min(1)
  .superRefine((value, ctx) => {
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1];
    if (scheme === undefined) return; // a plain path; its existence is checked after validation
    if (!sourceSchemes.includes(`${scheme.toLowerCase()}:`)) {
      ctx.addIssue({ code: 'custom', message: `scheme "${scheme}:" is not supported: use rtsp://, rtsps://, http(s)://, file:// or a file path` });
      return;
    }
    try {
      const url = new URL(value);
      if (url.protocol !== 'file:' && url.hostname === '') {
        ctx.addIssue({ code: 'custom', message: 'is not a valid URL: the host is missing' });
      }
    } catch {
      ctx.addIssue({ code: 'custom', message: 'is not a valid URL (expected e.g. rtsp://host:554/stream)' });
    }
  });

const fraction = z.number().min(0).max(1);

export const roiSchema = z
  .strictObject({
    x: fraction.describe('Left edge, 0..1 of the picture width.'),
    y: fraction.describe('Top edge, 0..1 of the picture height.'),
    width: z.number().gt(0).max(1).describe('0..1 of the picture width.'),
    height: z.number().gt(0).max(1).describe('0..1 of the picture height.'),
  })
  .superRefine((roi, ctx) => {
    if (roi.x + roi.width > 1.000001) ctx.addIssue({ code: 'custom', path: ['width'], message: `x + width must be <= 1 (got ${roi.x} + ${roi.width})` });
    if (roi.y + roi.height > 1.000001) ctx.addIssue({ code: 'custom', path: ['height'], message: `y + height must be <= 1 (got ${roi.y} + ${roi.height})` });
  });

export const cameraSchema = z.strictObject({
  id: identifier.describe('Camera id, unique on this device; used in results and topics.'),
  url: sourceUrl.describe('rtsp://, rtsps://, http(s):// (MJPEG), file:// URL or a file path. Credentials may be embedded; they are redacted everywhere.'),
  username: z.string().min(1).optional().describe('Camera user; overrides one embedded in the URL.'),
  password: secret().optional().describe('Camera password; overrides one embedded in the URL.'),
  passwordFile: z.string().min(1).optional().describe('File holding the camera password (one trailing newline is ignored).'),
  sampleFps: z.number().positive().max(120).nullable().default(5).describe('Frames per second sent to the model; null = every decoded frame.'),
  loop: z.boolean().default(true).describe('File sources: replay from the start when the file ends.'),
  realtime: z.boolean().default(true).describe('File sources: read at the native frame rate (like a camera) rather than as fast as possible.'),
  transport: z.enum(['tcp', 'udp', 'auto']).default('tcp').describe('RTSP transport.'),
  decodeSkip: z
    .enum(['auto', 'none', 'nonref', 'keyframes'])
    .default('auto')
    .describe(
      "Decode less than every frame when sampleFps is far below the stream's rate (ffmpeg -skip_frame). auto: keyframes only when keyframes alone come at sampleFps or more, else skip non-reference frames when what is left still does, else decode all; learned by a short probe of the stream at start (docs/ingest.md). nonref: skip non-reference frames (-skip_frame noref). keyframes: decode keyframes only (-skip_frame nokey). none: decode every frame. A mode the stream cannot serve at sampleFps falls back (DECODE_SKIP_TOO_SPARSE).",
    ),
  roi: roiSchema.optional().describe('Region of interest, as fractions of the picture: cropped before scaling to the model input.'),
  enabled: z.boolean().default(true).describe('false: keep the camera configured but do not open it.'),
  // counting (issue #18)
  lines: countingLinesSchema,
});

const tlsSchema = z.strictObject({
  caFile: z.string().min(1).optional().describe('PEM file of the CA that signed the broker certificate.'),
  certFile: z.string().min(1).optional().describe('PEM client certificate.'),
  keyFile: z.string().min(1).optional().describe('PEM client key.'),
  rejectUnauthorized: z.boolean().default(true).describe('false accepts any broker certificate: for tests only.'),
});

const brokerUrl = z.string().refine(
  (value) => {
    try {
      return ['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:'].includes(new URL(value).protocol);
    } catch {
      return false;
    }
  },
  { error: 'must be a URL like mqtt://host:1883 or mqtts://host:8883' },
);

export const mqttSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('false: results are stored locally only.'),
    url: brokerUrl.optional().describe('Broker URL. Unset: an embedded broker (aedes, MQTT 3.1.1) is started.'),
    embeddedBroker: z
      .strictObject({
        host: z.string().min(1).default('127.0.0.1').describe('Listen address; 0.0.0.0 exposes it to the network.'),
        port: z.number().int().min(1).max(65535).default(1883).describe('Listen port of the embedded broker.'),
      })
      .prefault({}),
    clientId: z.string().min(1).optional().describe('Defaults to cctv-<deviceId>.'),
    username: z.string().min(1).optional().describe('Broker user.'),
    password: secret().optional().describe('Broker password.'),
    passwordFile: z.string().min(1).optional().describe('File holding the broker password (one trailing newline is ignored).'),
    tls: tlsSchema.optional(),
    topicPrefix: z
      .string()
      .regex(/^[^#+/][^#+]*[^#+/]$|^[^#+/]$/, { error: 'must be non-empty, without "#", "+" or a leading/trailing "/"' })
      .default('cctv')
      .describe('First topic level: <prefix>/<deviceId>/...'),
    keepaliveSeconds: z.number().int().min(5).max(3600).default(30).describe('MQTT keep-alive.'),
    protocol: z.enum(['auto', '5', '3.1.1']).default('auto').describe('auto: MQTT 5, falling back to 3.1.1 when the broker refuses it.'),
    reconnectMs: z.number().int().min(100).max(300_000).default(1000).describe('First delay before reconnecting; doubles per failed attempt, with jitter.'),
    reconnectMaxMs: z.number().int().min(100).max(3_600_000).default(30_000).describe('Cap of the reconnect delay.'),
    publishBatch: z.number().int().min(1).max(1000).default(100).describe('Outbox rows published per drain step.'),
    expirySeconds: z
      .strictObject({
        results: z
          .number()
          .int()
          .min(1)
          .nullable()
          .default(604_800)
          .describe('MQTT 5 message expiry of results, counted from when the result was produced; null: never. Older outbox rows are dropped and counted.'),
        telemetry: z.number().int().min(1).nullable().default(86_400).describe('Same, for telemetry samples.'),
        events: z.number().int().min(1).nullable().default(604_800).describe('Same, for events.'),
      })
      .prefault({}),
    commands: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Subscribe to <prefix>/<deviceId>/cmd/+ and answer on the reply topic.'),
        maxPayloadBytes: z.number().int().min(64).max(1_048_576).default(16_384).describe('Larger command payloads are refused with an error reply.'),
      })
      .prefault({}),
  })
  .prefault({});

export const inferenceSchema = z
  .strictObject({
    intraOpThreads: z
      .union([z.literal('auto'), z.number().int().min(1).max(64)])
      .default('auto')
      .describe(
        'onnxruntime threads inside one operator. "auto": 1 and 2 are timed on this CPU when a model is loaded (at start and at each swap) and the faster is kept, fewer threads on a tie within 5 % (logged, and in status). A number fixes it.',
      ),
    sessions: z
      .union([z.literal('auto'), z.literal(1), z.literal(2)])
      .default('auto')
      .describe(
        'onnxruntime sessions, each in its own worker thread, that run two frames side by side (2) or one at a time (1). "auto": timed with the thread count (1 session of 1 or 2 threads, 2 sessions of 1 thread; ms per frame with every session busy), the faster kept, the lighter on a tie within 5 %.',
      ),
    interOpThreads: z.number().int().min(1).max(64).default(1).describe('onnxruntime threads across operators.'),
    graphOptimization: z.enum(['disabled', 'basic', 'extended', 'all']).default('all').describe('onnxruntime graph optimisation level.'),
    executionProviders: z
      .array(z.enum(['cpu', 'cuda', 'tensorrt', 'dml', 'coreml']))
      .min(1)
      .default(['cpu'])
      .describe('Tried in order; cpu is always added last as the fallback.'),
    scoreThreshold: z.number().min(0).max(1).optional().describe("Overrides the manifest's score threshold."),
    spinWait: z
      .boolean()
      .default(false)
      .describe(
        'onnxruntime threads spin briefly between ops and runs instead of sleeping. Off by default: the spinning takes the CPU that ffmpeg, preprocessing and SQLite need while a run goes on (bench/inference.ts: 45-51 against 33-35 ms of CPU per frame, no faster).',
      ),
    cpuMemArena: z
      .boolean()
      .default(true)
      .describe(
        "onnxruntime's CPU memory arena: per-run tensors are reused instead of allocated. With MALLOC_MMAP_THRESHOLD_=131072 (set by the unit) model swaps do not grow memory either (test/e2e/hot-swap.test.ts).",
      ),
  })
  .prefault({});

export const configSchema = z
  .strictObject({
    deviceId: identifier
      .default(
        () =>
          os
            .hostname()
            .replace(/[^A-Za-z0-9_-]/g, '-')
            .slice(0, 63) || 'edge',
      )
      .refine((id) => id !== 'fleet', { error: '"fleet" is taken: <prefix>/fleet/... is the topic namespace every device shares' })
      .meta({ defaultDoc: 'the hostname' })
      .describe("This device's id: the topic namespace <prefix>/<deviceId>/... and the results' origin."),
    dataDir: z.string().min(1).default('./data').describe('Directory of the SQLite database (relative paths are from the working directory).'),
    log: z
      .strictObject({
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info').describe('Log level of the JSON lines on stdout.'),
      })
      .prefault({}),
    ffmpeg: z
      .strictObject({
        path: z
          .string()
          .min(1)
          .optional()
          .describe(
            "ffmpeg binary; unset: Debian's /usr/bin/ffmpeg when installed, else the bundled @ffmpeg-installer build (a 2018 static 4.1; docs/decisions/0007-system-ffmpeg-first.md).",
          ),
        hwaccel: z
          .enum(['none', 'auto', 'vaapi', 'cuda', 'qsv', 'v4l2m2m', 'drm'])
          .default('none')
          .describe('Hardware decode (needs a system ffmpeg that supports it).'),
        socketTimeoutSeconds: z.number().positive().max(300).default(10).describe('RTSP socket timeout passed to ffmpeg.'),
        decodeThreads: z.number().int().min(0).max(64).default(0).describe('ffmpeg decoder threads per camera; 0 lets ffmpeg choose (one per core).'),
        stallTimeoutSeconds: z.number().positive().max(600).default(10).describe('Restart ffmpeg when no frame arrived for this long.'),
        restartBackoffMs: z
          .strictObject({
            initial: z.number().int().min(10).default(500).describe('First delay before restarting a failed ffmpeg; doubles per failure, with jitter.'),
            max: z
              .number()
              .int()
              .min(100)
              .default(2000)
              .describe('Cap of the restart delay after a transient failure (refused, timeout, stall): a rebooted camera is back within seconds.'),
            maxWhenRejected: z
              .number()
              .int()
              .min(100)
              .default(60_000)
              .describe('Cap when the camera rejects us (unauthorized, not found, undecodable): retrying fast would only flood its logs.'),
          })
          .prefault({}),
      })
      .prefault({}),
    cameras: z
      .array(cameraSchema)
      .min(1, { error: 'at least one camera is needed' })
      .superRefine((cameras, ctx) => {
        const seen = new Set<string>();
        cameras.forEach((camera, index) => {
          if (seen.has(camera.id)) ctx.addIssue({ code: 'custom', path: [index, 'id'], message: `duplicate camera id "${camera.id}"` });
          seen.add(camera.id);
          if (camera.password !== undefined && camera.passwordFile !== undefined) {
            ctx.addIssue({ code: 'custom', path: [index, 'passwordFile'], message: 'give password or passwordFile, not both' });
          }
        });
      }),
    mqtt: mqttSchema,
    model: z
      .strictObject({
        manifest: z
          .string()
          .min(1)
          .default('auto')
          .describe(
            '"auto": of the YOLOX-nano models present (int8, float), the faster on this CPU, timed at start; int8 only when its recorded agreement with float reaches autoMinAgreement, and on a tie. Or a path to a model manifest (JSON).',
          ),
        autoMinAgreement: z
          .number()
          .min(0)
          .max(1)
          .default(0.9)
          .describe(
            '"auto" considers a quantized model only when its recorded precision and recall against its float original (manifest `agreement`) both reach this.',
          ),
        assetsDir: z.string().min(1).optional().describe("Where model files are looked up; defaults to the package's models/assets."),
      })
      .prefault({}),
    inference: inferenceSchema,
    storage: z
      .strictObject({
        fileName: z
          .string()
          .regex(/^[^/\\]+$/, { error: 'must be a file name inside dataDir, without slashes' })
          .default('agent.db')
          .describe('Database file name inside dataDir.'),
        flushIntervalMs: z.number().int().min(10).max(10_000).default(250).describe('Results are written in one transaction per flush.'),
        maxBatchRows: z.number().int().min(1).max(10_000).default(500).describe('A flush happens early when this many results wait.'),
        retention: z
          .strictObject({
            resultsDays: z.number().positive().default(30).describe('Results older than this are pruned.'),
            telemetryDays: z.number().positive().default(90).describe('Telemetry samples older than this are pruned.'),
            eventsDays: z.number().positive().default(365).describe('Events older than this are pruned.'),
            maxDatabaseMB: z
              .number()
              .positive()
              .nullable()
              .default(2048)
              .describe('Size cap of the database (file + WAL): above it the oldest results and telemetry go first. null: no cap.'),
            minFreeDiskMB: z
              .number()
              .min(0)
              .default(256)
              .describe('Below this much free space on the data disk the agent prunes early and enters the degraded mode.'),
            pruneBatchRows: z
              .number()
              .int()
              .min(10)
              .max(100_000)
              .default(2000)
              .describe('Rows deleted per pruning transaction: small, so the writer is never held long.'),
            pruneIntervalSeconds: z.number().min(1).max(86_400).default(60).describe('How often retention runs.'),
          })
          .prefault({}),
        outboxMaxMessages: z
          .number()
          .int()
          .min(100)
          .max(100_000_000)
          .default(500_000)
          .describe('Cap of messages kept for the broker; beyond it the oldest are dropped, counted and reported.'),
      })
      .prefault({}),
    telemetry: z
      .strictObject({
        intervalSeconds: z.number().min(1).max(86_400).default(30).describe('A telemetry sample (system and pipeline) is stored and published this often.'),
        publish: z.boolean().default(true).describe('false: samples are only stored locally.'),
        sysfsRoot: z
          .string()
          .min(1)
          .default('/sys')
          .describe("Where the box's hwmon and IIO sensors are read (a container may see the host's sysfs elsewhere); a box without sensors reports none."),
      })
      .prefault({}),
    status: z
      .strictObject({
        intervalSeconds: z.number().min(1).max(3600).default(5).describe('One-line status on a terminal.'),
      })
      .prefault({}),
    shutdown: z
      .strictObject({
        timeoutMs: z.number().int().min(500).max(120_000).default(10_000).describe('Deadline for the whole shutdown.'),
      })
      .prefault({}),
    runtime: z
      .strictObject({
        heapGrowingPercent: z
          .number()
          .int()
          .min(0)
          .max(400)
          .default(100)
          .describe(
            "How far V8 lets the JS heap grow past its live size before the next full collection (its --heap-growing-percent), read at start: 100 lets it double, so full collections come every 8-14 s instead of every 3-5 s and the main thread spends about 9 % less time, for up to about 20 MB more heap (docs/decisions/0013-heap-growth.md); 0 leaves V8's own choice.",
          ),
      })
      .prefault({}),
    monitor: monitorSchema,
    modelUpdates: modelUpdatesSchema,
    // counting (issue #18)
    counting: countingSchema,
  })
  .superRefine((config, ctx) => {
    if (config.mqtt.password !== undefined && config.mqtt.passwordFile !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['mqtt', 'passwordFile'], message: 'give password or passwordFile, not both' });
    }
  });

export type AgentConfig = z.output<typeof configSchema>;
export type CameraConfig = z.output<typeof cameraSchema>;
export type Roi = z.output<typeof roiSchema>;
export type MqttConfig = z.output<typeof mqttSchema>;
export type InferenceConfig = z.output<typeof inferenceSchema>;
