import fs from 'node:fs';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { deleteReferences, DriftReader } from '../drift/drift-reader.js';
import type { DriftPayload } from '../drift/drift-schema.js';
import { AgentError, errorLines } from '../errors.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { MonitorReader } from '../monitor/monitor-reader.js';
import type { QualityPayload } from '../monitor/quality-schema.js';
import { sparklineOf } from '../telemetry/sparkline.js';
import { TelemetryReader } from '../telemetry/telemetry-reader.js';
import { locateDatabase } from './database-location.js';
import type { CliIo } from './io.js';
import { tableLines } from './table.js';
import { parseInstant } from './telemetry-command.js';

export const MONITOR_USAGE = `usage:
  cctv-agent monitor [--since 6h] [--json] [--config FILE | --data-dir DIR]
  cctv-agent monitor reference reset [--camera ID] [--config FILE | --data-dir DIR]

Per camera and model version: precision with its 95 % interval and label count (over the count
and the time windows), recall where misses were reported, the alerts raised and the retrain
requests with their history, precision over --since as a sparkline, and drift: the last window
compared with the reference, its drifted features, the label-free precision estimate. Read from
the database, running agent or not (docs/monitoring.md).

'reference reset' forgets the drift reference (one camera's, or every camera's) after a
deliberate change such as a camera moved: the agent captures a new one over the next
monitor.drift.referenceSeconds (a running agent notices at its next window).
`;

type Estimate = QualityPayload['windows']['labels']['overall']['precision'];
const percent = (value: number): string => `${(value * 100).toFixed(1)} %`;
const estimateText = (estimate: Estimate): string =>
  estimate === null ? '-' : `${percent(estimate.value)} [${percent(estimate.low)}-${percent(estimate.high)}] n=${estimate.n}`;

/** `cctv-agent monitor`: what the agent measured of its model's quality, and what it did about it. */
export async function monitorCommand(argv: string[], io: CliIo, now: () => number = Date.now): Promise<number> {
  try {
    if (argv.includes('--help') || argv.includes('-h')) {
      io.out.write(MONITOR_USAGE);
      return ExitCode.OK;
    }
    if (argv[0] === 'reference') return referenceCommand(argv.slice(1), io);
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: { since: { type: 'string' }, json: { type: 'boolean' }, config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string' } },
    });
    const at = now();
    const since = parseInstant(values.since ?? '6h', at, '--since');
    const location = locateDatabase({ config: values.config, dataDir: values['data-dir'] }, io.env);
    const reader = TelemetryReader.open(location.file)!;
    try {
      if (reader.schemaVersion < 3)
        throw new AgentError(
          'STORAGE_READ_FAILED',
          `${location.file} is from an agent without monitoring (schema ${reader.schemaVersion}): start the current agent once to migrate it`,
        );
      const monitor = new MonitorReader(reader.database);
      const quality = monitor.latestQuality();
      const alerts = monitor.activeAlerts();
      const retrain = monitor.retrainRequests();
      const series = quality.map((entry) => ({
        cameraId: entry.cameraId,
        model: entry.model,
        points: monitor.precisionSeries(entry.cameraId, entry.model, since),
      }));
      const driftReader = new DriftReader(reader.database);
      const drift = driftReader.latestWindows();
      const references = driftReader.references();
      const driftSeries = drift.map((entry) => ({
        cameraId: entry.cameraId,
        model: entry.model,
        points: driftReader.driftedSeries(entry.cameraId, entry.model, since),
      }));
      if (values.json) {
        io.out.write(
          `${JSON.stringify({ file: location.file, since: new Date(since).toISOString(), quality, alerts, retrain, precisionSeries: series, drift, references, driftSeries }, null, 2)}\n`,
        );
        return ExitCode.OK;
      }
      io.out.write(formatMonitor(quality, alerts, retrain, series, since, at));
      io.out.write(formatDrift(drift, references, driftSeries, since, at));
      return ExitCode.OK;
    } finally {
      reader.close();
    }
  } catch (error) {
    for (const line of errorLines(error)) io.err.write(`${line}\n`);
    if (error instanceof TypeError && 'code' in error) return ExitCode.CONFIG; // parseArgs
    return error instanceof AgentError && (error.code === 'USAGE' || error.code.startsWith('CONFIG_')) ? ExitCode.CONFIG : ExitCode.FATAL;
  }
}

/** `monitor reference reset [--camera ID]`: deletes stored drift references (read-write open). */
function referenceCommand(argv: string[], io: CliIo): number {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: { camera: { type: 'string' }, config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string' } },
  });
  if (positionals[0] !== 'reset' || positionals.length !== 1)
    throw new AgentError('USAGE', `unknown: monitor reference ${positionals.join(' ')}\n${MONITOR_USAGE}`);
  const location = locateDatabase({ config: values.config, dataDir: values['data-dir'] }, io.env);
  if (!fs.existsSync(location.file)) throw new AgentError('STORAGE_READ_FAILED', `no database at ${location.file}: no agent has run with this data directory`);
  const db = new Database(location.file, { fileMustExist: true, timeout: 5000 });
  try {
    const deleted = deleteReferences(db, values.camera);
    io.out.write(
      deleted === 0
        ? `no drift reference stored${values.camera ? ` for camera ${values.camera}` : ''}: nothing to reset\n`
        : `${deleted} drift reference(s) deleted${values.camera ? ` for camera ${values.camera}` : ''}: the agent captures new ones over its next monitor.drift.referenceSeconds\n`,
    );
    return ExitCode.OK;
  } finally {
    db.close();
  }
}

function formatDrift(
  windows: DriftPayload[],
  references: ReturnType<DriftReader['references']>,
  series: Array<{ cameraId: string; points: Array<{ at: number; value: number | null }> }>,
  since: number,
  at: number,
): string {
  const lines: string[] = [''];
  if (references.length === 0 && windows.length === 0)
    lines.push('drift: no reference captured yet (monitor.drift.referenceSeconds after a model becomes active)');
  for (const reference of references) {
    lines.push(
      `drift reference ${reference.cameraId} ${reference.model.id}@${reference.model.version}: ${reference.source}, ${new Date(reference.from).toISOString()} to ${new Date(reference.to).toISOString()}`,
    );
  }
  for (const [index, entry] of windows.entries()) {
    const estimate = entry.estimatedPrecision;
    lines.push(
      `drift ${entry.cameraId} ${entry.model.id}@${entry.model.version} window to ${entry.window.to}: ${entry.drifted ? 'DRIFTED' : 'stable'} (${entry.driftedFeatures} features, ${entry.consecutive} in a row); estimated precision ${
        estimate ? `${percent(estimate.value)} (${estimate.calibration}, ${estimate.detections} detections)` : '-'
      }`,
    );
    const shifted = entry.features.filter((feature) => feature.drifted);
    if (shifted.length > 0) lines.push(`  shifted: ${shifted.map((feature) => `${feature.feature} ${feature.test} ${feature.value.toFixed(3)}`).join('; ')}`);
    const chart = sparklineOf(series[index]!.points, since, at, 48);
    if (chart) lines.push(`  drifted features since ${new Date(since).toISOString().slice(0, 16)}Z: ${chart}`);
  }
  return `${lines.join('\n')}\n`;
}

function formatMonitor(
  quality: QualityPayload[],
  alerts: ReturnType<MonitorReader['activeAlerts']>,
  retrain: ReturnType<MonitorReader['retrainRequests']>,
  series: Array<{ cameraId: string; model: { id: string; version: string }; points: Array<{ at: number; value: number | null }> }>,
  since: number,
  at: number,
): string {
  const lines: string[] = [];
  if (quality.length === 0) lines.push('quality: no figures yet (no feedback has arrived: docs/monitoring.md says how to send it)');
  for (const [index, entry] of quality.entries()) {
    const { labels, minutes } = entry.windows;
    lines.push(`${entry.cameraId}  ${entry.model.id}@${entry.model.version}  (figures of ${entry.at})`);
    lines.push(
      ...tableLines([
        ['window', 'precision', 'detection precision', 'recall', 'labels', 'missed'],
        [
          `last ${labels.size} labels`,
          estimateText(labels.overall.precision),
          estimateText(labels.overall.detectionPrecision),
          estimateText(labels.overall.recall),
          String(labels.overall.labelled),
          String(labels.overall.missed),
        ],
        [
          `last ${minutes.size} min`,
          estimateText(minutes.overall.precision),
          estimateText(minutes.overall.detectionPrecision),
          estimateText(minutes.overall.recall),
          String(minutes.overall.labelled),
          String(minutes.overall.missed),
        ],
      ]),
    );
    const types = Object.entries(labels.byType).filter(([, figures]) => figures.labelled > 0);
    if (types.length > 0)
      lines.push(`  by type (last ${labels.size} labels): ${types.map(([type, figures]) => `${type} ${estimateText(figures.precision)}`).join('; ')}`);
    const chart = sparklineOf(series[index]!.points, since, at, 48);
    if (chart) lines.push(`  precision since ${new Date(since).toISOString().slice(0, 16)}Z: ${chart}`);
    lines.push('');
  }
  lines.push(alerts.length === 0 ? 'alerts: none' : `alerts: ${alerts.length}`);
  for (const alert of alerts) {
    lines.push(
      `  ${alert.ruleId} on ${alert.cameraId} (${alert.model.id}@${alert.model.version}): ${alert.metric} ${alert.value} ${alert.direction === 'above' ? '>=' : '<='} ${alert.threshold} over ${alert.labels} labels, since ${alert.raisedAt}; clears at ${alert.clearAt}`,
    );
  }
  lines.push(retrain.length === 0 ? 'retrain requests: none' : 'retrain requests:');
  for (const request of retrain) {
    lines.push(
      `  ${request.requestId}  ${request.state}  ${request.cameraId} ${request.model.id}@${request.model.version}  ${request.trigger}: ${request.reason}  (${request.evidenceSamples} evidence samples)`,
    );
    for (const step of request.transitions) lines.push(`    ${new Date(step.at).toISOString()}  ${step.from ?? '-'} -> ${step.to}  by ${step.actor}`);
  }
  return `${lines.join('\n')}\n`;
}
