import { parseArgs } from 'node:util';
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

Per camera and model version: precision with its 95 % interval and label count (over the count
and the time windows), recall where misses were reported, the alerts raised and the retrain
requests with their history, and precision over --since as a sparkline. Read from the database,
running agent or not (docs/monitoring.md).
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
      if (values.json) {
        io.out.write(
          `${JSON.stringify({ file: location.file, since: new Date(since).toISOString(), quality, alerts, retrain, precisionSeries: series }, null, 2)}\n`,
        );
        return ExitCode.OK;
      }
      io.out.write(formatMonitor(quality, alerts, retrain, series, since, at));
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
      `  ${alert.ruleId} on ${alert.cameraId} (${alert.model.id}@${alert.model.version}): ${alert.metric} ${alert.value} <= ${alert.threshold} over ${alert.labels} labels, since ${alert.raisedAt}; clears at ${alert.clearAt}`,
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
