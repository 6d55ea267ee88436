import { sensorLines } from './sensor-lines.js';
import { tableLines } from './table.js';
import { sparklineOf } from '../telemetry/sparkline.js';
import type { TelemetryField, TelemetryRow, TelemetrySummary } from '../telemetry/telemetry-reader.js';
import { type AgentState, fieldNames, type ReportContext } from './telemetry-report.js';

/** Human output never goes wider than this. */
export const MAX_COLUMNS = 100;
const SPARK_WIDTH = 60;

const iso = (ms: number): string => new Date(ms).toISOString();

/** 90s, 15m, 1h, 2d, 1h 30m: the largest two units. */
export function formatDuration(ms: number): string {
  const units: Array<[string, number]> = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  let rest = Math.max(0, Math.round(ms / 1000) * 1000);
  const parts: string[] = [];
  for (const [unit, size] of units) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    } else if (parts.length > 0) {
      break;
    }
  }
  return parts.length === 0 ? '0s' : parts.join(' ');
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

function formatNumber(value: number | null, digits = 1): string {
  return value === null ? '-' : Number.isInteger(value) && digits <= 1 ? String(value) : value.toFixed(digits);
}

/** How each field is shown: label and formatter. */
const fieldDisplay: Record<TelemetryField, [string, (value: number | null) => string]> = {
  cpuPercent: ['cpu %', (v) => formatNumber(v)],
  temperatureC: ['temperature °C', (v) => formatNumber(v)],
  memoryAvailableBytes: ['memory available', formatBytes],
  diskFreeBytes: ['disk free', formatBytes],
  rssBytes: ['agent rss', formatBytes],
  fps: ['fps', (v) => formatNumber(v, 2)],
  inferenceP50Ms: ['inference p50 ms', (v) => formatNumber(v)],
  inferenceP95Ms: ['inference p95 ms', (v) => formatNumber(v)],
  outboxDepth: ['outbox depth', (v) => formatNumber(v, 0)],
  databaseBytes: ['database', formatBytes],
};

/** YYYY-MM-DD HH:MM:SS in UTC (the logs and the JSON are UTC too). */
export function formatTime(ms: number): string {
  return iso(ms).slice(0, 19).replace('T', ' ');
}

function clip(line: string): string {
  return line.length > MAX_COLUMNS ? `${line.slice(0, MAX_COLUMNS - 1)}…` : line;
}

/** Left-aligned columns, numbers right-aligned; cells are clipped by the final line clip. */

function agentLine(agent: AgentState): string {
  switch (agent.state) {
    case 'running':
      return `agent running (pid ${agent.pid})`;
    case 'stopped':
      return `agent stopped (last status ${agent.statusWrittenAt})`;
    case 'killed':
      return `agent not running (pid ${agent.pid} gone without a clean stop: killed?)`;
    case 'hung':
      return `agent hung? (pid ${agent.pid}, status not updated since ${agent.statusWrittenAt})`;
    case 'unknown':
      return 'agent state unknown (no status.json in the data directory)';
  }
}

function latestLines(row: TelemetryRow, now: number): string[] {
  const model = row.sample?.model ? `, model ${row.sample.model.id}@${row.sample.model.version}` : '';
  const lines = [
    `latest sample ${formatTime(row.at)} UTC (${formatDuration(now - row.at)} ago, ${formatDuration(row.intervalSeconds * 1000)} interval)${model}`,
  ];
  const v = row.values;
  const pair = (left: TelemetryField, leftText: string, right: TelemetryField, rightText: string): string[] => [
    fieldDisplay[left][0],
    leftText,
    fieldDisplay[right][0],
    rightText,
  ];
  lines.push(
    ...tableLines([
      pair('cpuPercent', formatNumber(v.cpuPercent), 'fps', formatNumber(v.fps, 2)),
      pair('temperatureC', formatNumber(v.temperatureC), 'inferenceP50Ms', formatNumber(v.inferenceP50Ms)),
      pair('memoryAvailableBytes', formatBytes(v.memoryAvailableBytes), 'inferenceP95Ms', formatNumber(v.inferenceP95Ms)),
      pair('diskFreeBytes', formatBytes(v.diskFreeBytes), 'outboxDepth', formatNumber(v.outboxDepth, 0)),
      pair('rssBytes', formatBytes(v.rssBytes), 'databaseBytes', formatBytes(v.databaseBytes)),
    ]),
  );
  const cameras = row.sample?.pipeline.cameras ?? [];
  if (cameras.length > 0) {
    lines.push(
      ...tableLines(
        [
          ['camera', 'state', 'frames in', 'out', 'dropped', 'reconnects', 'fps', 'last error'],
          ...cameras.map((camera) => [
            camera.id,
            camera.state,
            String(camera.framesIn),
            String(camera.framesOut),
            String(camera.dropped),
            String(camera.reconnects),
            camera.decodeFps.toFixed(1),
            camera.lastError ?? '-',
          ]),
        ],
        { rightAligned: new Set([2, 3, 4, 5, 6]) },
      ),
    );
  } else if (row.sample === null) {
    lines.push('  (the sample JSON is unreadable: per-camera figures are missing)');
  }
  return lines;
}

function bucketLabel(start: number, context: ReportContext): string {
  const time = formatTime(start);
  const multiDay = formatTime(context.since).slice(0, 10) !== formatTime(context.until - 1).slice(0, 10);
  const clock = context.bucketMs % 60_000 === 0 ? time.slice(11, 16) : time.slice(11, 19);
  return multiDay ? `${time.slice(5, 10)} ${clock}` : clock;
}

function vehicleLines(summary: TelemetrySummary, context: ReportContext): string[] {
  const { vehicles } = summary;
  const scope = context.cameraId === undefined ? 'all cameras' : `camera ${context.cameraId}`;
  const lines = [`vehicles per type per ${formatDuration(context.bucketMs)} (${scope}; from results, UTC)`];
  if (vehicles.results === 0) return [...lines, '  no results in the range'];
  const types = Object.entries(vehicles.totals)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([type]) => type);
  const total = (counts: Record<string, number>): number => Object.values(counts).reduce((sum, count) => sum + count, 0);
  const rows = [
    ['from', 'results', ...types, 'total'],
    ...vehicles.buckets.map((bucket) => [
      bucketLabel(bucket.start, context),
      String(bucket.results),
      ...types.map((type) => String(bucket.vehicles[type] ?? 0)),
      String(total(bucket.vehicles)),
    ]),
    ['total', String(vehicles.results), ...types.map((type) => String(vehicles.totals[type] ?? 0)), String(total(vehicles.totals))],
  ];
  lines.push(...tableLines(rows, { rightAligned: new Set(rows[0]!.map((_, index) => index).filter((index) => index > 0)) }));
  if (context.cameraId === undefined && Object.keys(vehicles.cameras).length > 1) {
    lines.push(
      `  results per camera: ${Object.entries(vehicles.cameras)
        .sort((a, b) => a[0].localeCompare(b[0]))
        .map(([id, count]) => `${id} ${count}`)
        .join(', ')}`,
    );
  }
  if (vehicles.unreadableRows > 0) lines.push(`  ${vehicles.unreadableRows} results had unreadable vehicles JSON (not counted)`);
  return lines;
}

function eventLines(summary: TelemetrySummary): string[] {
  const { events } = summary;
  if (events.total === 0) return ['events: none in the range'];
  const header = events.recent.length < events.total ? `events (last ${events.recent.length} of ${events.total})` : `events (${events.total})`;
  return [
    header,
    ...tableLines(
      events.recent.map((event) => [
        formatTime(event.at).slice(5),
        event.kind,
        event.subject ?? '-',
        event.code ?? '-',
        (event.detail ?? '').replace(/\s+/g, ' '),
      ]),
    ),
  ];
}

function chartLines(summary: TelemetrySummary, context: ReportContext): string[] {
  const charts: Array<[string, TelemetryField, string]> = [
    ['fps', 'fps', ''],
    ['inference p50', 'inferenceP50Ms', ' ms'],
    ['cpu', 'cpuPercent', ' %'],
  ];
  // From the first sample on: an agent installed an hour ago gets an hour wide chart, not a
  // dot at the right end of a week. Gaps after the first sample still show (blank columns).
  const from = Math.max(context.since, summary.series[0]?.at ?? context.since);
  const drawn = charts.map(([label, field, unit]) => {
    const line = sparklineOf(
      summary.series.map((point) => ({ at: point.at, value: point.values[field] })),
      from,
      context.until,
      SPARK_WIDTH,
    );
    const stats = summary.fields[field];
    return { label, line, range: stats ? `${formatNumber(stats.min)}..${formatNumber(stats.max)}${unit}` : 'no data' };
  });
  const width = Math.max(...drawn.map((chart) => chart.line.length));
  if (width === 0) return [];
  const perColumn = formatDuration((context.until - from) / width);
  const lines = [`charts (${formatTime(from).slice(5, 16)} .. ${formatTime(context.until).slice(5, 16)} UTC, ${perColumn} per column; blank: no sample)`];
  for (const chart of drawn) lines.push(`  ${chart.label.padEnd(13)} ${chart.line.padEnd(width)}  ${chart.range}`);
  return lines;
}

/** The report for a person: at most MAX_COLUMNS wide, no colour. */
export function formatReport(context: ReportContext, summary: TelemetrySummary): string {
  const scope = context.cameraId === undefined ? 'all cameras' : `camera ${context.cameraId}`;
  const copyNote = context.readMode === 'memory-copy' ? ', read from a copy in memory' : '';
  const lines = [
    `cctv-agent telemetry: device ${context.deviceId ?? '?'}, ${agentLine(context.agent)}`,
    `database ${context.file} (schema ${context.schemaVersion}, ${formatBytes(context.databaseBytes)}${copyNote})`,
    `range    ${formatTime(context.since)} .. ${formatTime(context.until)} UTC (${formatDuration(context.until - context.since)}), ${scope}: ${summary.samples} samples, ${summary.vehicles.results} results`,
    '',
  ];
  lines.push(...(summary.latest ? latestLines(summary.latest, context.now) : ['latest sample: none (the agent has not stored telemetry yet)']), '');
  if (summary.samples > 0) {
    lines.push(
      ...tableLines(
        [
          ['over the range', 'min', 'median', 'max', 'samples'],
          ...fieldNames
            .filter((name) => summary.fields[name] !== null)
            .map((name) => {
              const stats = summary.fields[name]!;
              const [label, show] = fieldDisplay[name];
              return [label, show(stats.min), show(stats.median), show(stats.max), String(stats.count)];
            }),
        ],
        { rightAligned: new Set([1, 2, 3, 4]) },
      ),
      '',
    );
  } else {
    lines.push('no telemetry samples in the range', '');
  }
  lines.push(...vehicleLines(summary, context), '', ...eventLines(summary));
  lines.push(...sensorLines(summary.latest?.sample?.system.sensors));
  if (context.quality.length > 0) {
    lines.push('', 'quality (measured from feedback; cctv-agent monitor for the rest):');
    for (const entry of context.quality) {
      const p = entry.precision;
      lines.push(
        `  ${entry.cameraId} ${entry.model.id}@${entry.model.version}: precision ${p ? `${(p.value * 100).toFixed(1)} % [${(p.low * 100).toFixed(1)}-${(p.high * 100).toFixed(1)} %]` : '-'} over ${entry.labels} labels (${entry.at})`,
      );
    }
  }
  if (context.counts.length > 0) {
    lines.push('', 'counts (vehicles crossing the lines; cctv-agent counts per type and interval):');
    for (const entry of context.counts) lines.push(`  ${entry.cameraId} ${entry.lineId} ${entry.direction}: ${entry.count}`);
  }
  const charts = chartLines(summary, context);
  if (charts.length > 0) lines.push('', ...charts);
  return `${lines.map(clip).join('\n')}\n`;
}

/** 2.0G, 20G, 200M: two or three digits, for the one-line follow output. */
function compactBytes(bytes: number | null): string {
  if (bytes === null) return '-';
  const units = ['B', 'K', 'M', 'G', 'T'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)}${units[unit]}`;
}

/** One line per sample for --follow (time of day in UTC; the date is on the first line). */
export function formatFollowLine(row: TelemetryRow): string {
  const v = row.values;
  const cameras = row.sample?.pipeline.cameras ?? [];
  const streaming = cameras.filter((camera) => camera.state === 'streaming').length;
  const parts = [
    formatTime(row.at).slice(11),
    `cpu ${v.cpuPercent === null ? '-' : Math.round(v.cpuPercent)}%`,
    v.temperatureC === null ? '' : `${Math.round(v.temperatureC)}°C`,
    `mem ${compactBytes(v.memoryAvailableBytes)}`,
    `disk ${compactBytes(v.diskFreeBytes)}`,
    `rss ${compactBytes(v.rssBytes)}`,
    `${v.fps === null ? '-' : v.fps.toFixed(1)} fps`,
    `infer ${formatNumber(v.inferenceP50Ms)}/${formatNumber(v.inferenceP95Ms)} ms`,
    `outbox ${formatNumber(v.outboxDepth, 0)}`,
    `db ${compactBytes(v.databaseBytes)}`,
    cameras.length > 0 ? `cams ${streaming}/${cameras.length}` : '',
  ];
  return clip(parts.filter((part) => part !== '').join(' '));
}
