import { z } from 'zod';
import { vehicleTypes } from '../common/vehicle-types.js';

/**
 * The `monitor` section of the config (part of the one schema in schema.ts): how the agent
 * measures its model's quality from feedback, when it alerts and asks for retraining, and which
 * frames it keeps as evidence. docs/monitoring.md explains each figure.
 */

/** The figures measured from reviewers' labels (docs/monitoring.md). */
export const qualityMetrics = ['precision', 'detectionPrecision', 'recall', 'detectionRecall'] as const;
export type QualityMetric = (typeof qualityMetrics)[number];

/**
 * Every figure an alert rule can watch: the labelled ones, and those other subsystems measure
 * and hand to the monitor as a metric source (drift, label-free estimates, count errors).
 */
export const alertMetrics = [
  ...qualityMetrics,
  'drift',
  'estimatedPrecision',
  'selfTest',
  // counting (issue #18): |agent - reference| / reference of the latest reference-counts comparison.
  'countError',
] as const;
export type AlertMetric = (typeof alertMetrics)[number];

export const alertRuleSchema = z
  .strictObject({
    id: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,47}$/, { error: 'lower-case letters, digits and "-", at most 48' })
      .describe("The rule's name, in alerts, events and the retrain request."),
    metric: z
      .enum(alertMetrics)
      .describe(
        'precision: detections right in vehicle and type; detectionPrecision: a vehicle at all (a wrong type still counts); recall, detectionRecall: the same over the vehicles reviewers reported, found or missed (docs/monitoring.md lists every metric).',
      ),
    vehicleType: z.enum(vehicleTypes).optional().describe("Only this vehicle type's figure; unset: all types together."),
    below: z.number().min(0).describe('Raised when the figure is at or below this (give below or above).').optional(),
    above: z.number().min(0).describe('Raised when the figure is at or above this (for figures where higher is worse).').optional(),
    minLabels: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(30)
      .describe('What the figure must rest on before the rule can raise or clear: labels, or for other metrics their own count (docs/monitoring.md).'),
    window: z
      .enum(['labels', 'minutes'])
      .default('labels')
      .describe('labels: the last monitor.windows.labels labelled detections; minutes: those captured in the last monitor.windows.minutes.'),
    bound: z
      .enum(['point', 'interval'])
      .default('point')
      .describe(
        'point: the estimate itself; interval: the end of its 95 % interval on the good side (raises only when the figure is surely past the threshold).',
      ),
    clearAt: z.number().min(0).optional().describe('Cleared when the figure is back past this (hysteresis); default: below + 0.10, or above - 0.10.'),
    cooldownMinutes: z.number().min(0).max(10_080).default(30).describe('After a clear, the rule does not raise again for this long.'),
    retrain: z.boolean().default(true).describe('Raising this alert also raises a retrain request (one pending per camera and model).'),
  })
  .superRefine((rule, ctx) => {
    if ((rule.below === undefined) === (rule.above === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['below'], message: 'give exactly one of below and above' });
      return;
    }
    if (rule.clearAt === undefined) return;
    if (rule.below !== undefined && rule.clearAt <= rule.below) {
      ctx.addIssue({ code: 'custom', path: ['clearAt'], message: `must be above below (${rule.below}), or the alert would flap` });
    }
    if (rule.above !== undefined && rule.clearAt >= rule.above) {
      ctx.addIssue({ code: 'custom', path: ['clearAt'], message: `must be under above (${rule.above}), or the alert would flap` });
    }
  });

export type AlertRule = z.output<typeof alertRuleSchema>;

/** The product's reference rule: precision at or below 40 % over at least 30 labels. */
export const DEFAULT_ALERT_RULES = [
  { id: 'low-precision', metric: 'precision', below: 0.4, minLabels: 30, window: 'labels', retrain: true },
  // Sustained drift: 2 drifted windows in a row (20 minutes by default) asks for retraining.
  { id: 'sustained-drift', metric: 'drift', above: 2, clearAt: 0, minLabels: 1, retrain: true },
  // Label-free: the expected precision of a window at or below 0.40 over at least 50 detections.
  { id: 'low-estimated-precision', metric: 'estimatedPrecision', below: 0.4, minLabels: 50, retrain: true },
  // The golden-sample self-test failed (a changed model file, a broken runtime, a faulty CPU): not a retraining matter.
  { id: 'self-test', metric: 'selfTest', above: 1, clearAt: 0, minLabels: 1, cooldownMinutes: 0, retrain: false },
  // counting (issue #18): the agent's count off the reference by 20 % or more, over at least 20 reference vehicles.
  { id: 'count-error', metric: 'countError', above: 0.2, clearAt: 0.1, minLabels: 20, cooldownMinutes: 0, retrain: false },
];

export const driftSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Input and prediction statistics per camera, compared with a reference window.'),
    everyNthFrame: z
      .number()
      .int()
      .min(1)
      .max(10_000)
      .default(25)
      .describe(
        'Input statistics on one frame in N per camera (prediction statistics on every result); 25 at 5 fps is one frame in 5 s, 120 per 10-minute window.',
      ),
    windowSeconds: z.number().min(5).max(86_400).default(600).describe('Length of a compared window.'),
    referenceSeconds: z
      .number()
      .min(5)
      .max(30 * 86_400)
      .default(3600)
      .describe('The reference is captured over this long after a model becomes active on a camera (unless the model ships one).'),
    psi: z.number().positive().default(0.25).describe('A distribution has shifted at PSI at or above this (the conventional "major shift" band).'),
    ksStatistic: z
      .number()
      .positive()
      .max(1)
      .default(0.5)
      .describe(
        'A continuous feature has shifted when the KS distance is at least this (frames in a row are alike, so the distance, not the p-value, guards against false alarms; docs/monitoring.md)...',
      ),
    ksPValue: z.number().positive().max(1).default(0.001).describe('...and its p-value under this.'),
    minValues: z.number().int().min(5).default(20).describe('Values each side needs before a feature is compared.'),
    minFeatures: z.number().int().min(1).default(2).describe('Features that must shift together for a window to count as drifted.'),
  })
  .prefault({});

export const estimateSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('The label-free precision estimate of each window (confidence-based, docs/monitoring.md).'),
    minCalibrationLabels: z
      .number()
      .int()
      .min(10)
      .default(50)
      .describe('Labelled detections of a vehicle type (or of all types) needed to calibrate its scores on feedback.'),
  })
  .prefault({});

export const selfTestSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Golden-sample self-test of the running model at start and every intervalHours.'),
    intervalHours: z.number().positive().max(720).default(6).describe('Hours between self-tests.'),
  })
  .prefault({});

export const evidenceSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Keep evidence frames (JPEG + detections) for retraining.'),
    dir: z.string().min(1).optional().describe('Where the JPEG files go (relative to dataDir); default <dataDir>/evidence.'),
    randomShare: z
      .number()
      .min(0)
      .max(1)
      .default(0.001)
      .describe('Each frame is kept with this probability, independently (a uniform random sample: precision measured on it is unbiased).'),
    lowConfidenceBelow: z
      .number()
      .min(0)
      .max(1)
      .default(0.45)
      .describe('A frame with a detection scored under this (and over the threshold) is a low-confidence sample.'),
    lowConfidencePerHour: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(30)
      .describe('Low-confidence samples per camera over a sliding hour, at most, and at least half the even spacing apart (60 s at 30).'),
    maxMegabytes: z.number().positive().max(1_000_000).default(512).describe('Byte quota: beyond it the oldest undisputed samples go first.'),
    maxSamples: z.number().int().min(1).max(10_000_000).default(5000).describe('Count quota, likewise.'),
    retentionDays: z.number().positive().default(30).describe('Samples older than this are deleted (disputed ones too).'),
    jpegQuality: z.number().int().min(30).max(100).default(85).describe('JPEG quality of the snapshots.'),
    maxChunkBytes: z.number().int().min(1024).max(262_144).default(65_536).describe('Largest chunk of a JPEG sent in one evidence-get reply over MQTT.'),
  })
  .prefault({});

export const monitorSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Quality from feedback, alerts and retrain requests.'),
    windows: z
      .strictObject({
        labels: z.number().int().min(10).max(100_000).default(200).describe('The count window: the last N labelled detections (by capture time).'),
        minutes: z.number().positive().max(525_600).default(60).describe('The time window: detections captured in the last T minutes.'),
      })
      .prefault({}),
    publishIntervalSeconds: z
      .number()
      .min(1)
      .max(86_400)
      .default(60)
      .describe('The quality figures are published on <prefix>/<deviceId>/quality when they change (new feedback) and at least this often.'),
    maxFeedbackItems: z.number().int().min(1).max(10_000).default(500).describe('Items in one feedback command, at most.'),
    alerts: z
      .array(alertRuleSchema)
      .max(50)
      .default(DEFAULT_ALERT_RULES as never)
      .describe('Alert rules; the default is the reference rule (precision <= 0.40 over >= 30 labels).'),
    evidence: evidenceSchema,
    drift: driftSchema,
    estimate: estimateSchema,
    selfTest: selfTestSchema,
  })
  .prefault({});

export type MonitorConfig = z.output<typeof monitorSchema>;
export type EvidenceConfig = z.output<typeof evidenceSchema>;
