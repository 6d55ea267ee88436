import { parseArgs } from 'node:util';
import { vehicleTypes } from '../common/vehicle-types.js';
import { CountsReader, type CountsRow } from '../counting/counts-reader.js';
import { AgentError, errorLines } from '../errors.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { TelemetryReader } from '../telemetry/telemetry-reader.js';
import { locateDatabase } from './database-location.js';
import type { CliIo } from './io.js';
import { formatTable } from './table.js';
import { parseDuration, parseInstant } from './telemetry-command.js';

export const COUNTS_USAGE = `usage:
  cctv-agent counts [--since 1h] [--until T] [--camera ID] [--bucket 15m] [--json | --csv]
                    [--config FILE | --data-dir DIR]

Vehicles counted on each camera's lines (docs/counting.md): one row per bucket, camera, line and
direction with a column per vehicle type, from the stored interval counts, running agent or not.
--bucket defaults to the whole period; it is rounded to whole intervals as stored.
--json and --csv give one row per bucket, camera, line, direction and type.
`;

const MAX_ROWS = 100_000;

/** `cctv-agent counts`: the stored interval counts as a table, JSON or CSV. */
export async function countsCommand(argv: string[], io: CliIo, now: () => number = Date.now): Promise<number> {
  try {
    if (argv.includes('--help') || argv.includes('-h')) {
      io.out.write(COUNTS_USAGE);
      return ExitCode.OK;
    }
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        since: { type: 'string' },
        until: { type: 'string' },
        camera: { type: 'string' },
        bucket: { type: 'string' },
        json: { type: 'boolean' },
        csv: { type: 'boolean' },
        config: { type: 'string', short: 'c' },
        'data-dir': { type: 'string' },
      },
    });
    if (values.json && values.csv) throw new AgentError('USAGE', 'give --json or --csv, not both');
    const at = now();
    const since = parseInstant(values.since ?? '1h', at, '--since');
    const until = values.until === undefined ? at + 1 : parseInstant(values.until, at, '--until');
    if (until <= since) throw new AgentError('USAGE', '--until must be after --since');
    let bucketMs = until - since;
    if (values.bucket !== undefined) {
      const parsed = parseDuration(values.bucket);
      if (parsed === undefined || parsed < 10_000)
        throw new AgentError('USAGE', `--bucket ${JSON.stringify(values.bucket)}: give a duration of at least 10s (1m, 15m, 1h)`);
      bucketMs = parsed;
    }
    const location = locateDatabase({ config: values.config, dataDir: values['data-dir'] }, io.env);
    const reader = TelemetryReader.open(location.file)!;
    try {
      if (!CountsReader.has(reader.database)) {
        throw new AgentError(
          'STORAGE_READ_FAILED',
          `${location.file} has no counts: start the current agent once to migrate it, with counting lines on a camera`,
        );
      }
      const counts = new CountsReader(reader.database);
      // Without --bucket the whole period is one bucket, from its own start; with it, buckets line up on the clock.
      const rows = counts.rows({ since, until, bucketMs, origin: values.bucket === undefined ? since : 0, cameraId: values.camera });
      if (rows.length > MAX_ROWS) throw new AgentError('USAGE', `${rows.length} rows: choose a larger --bucket or a shorter period`);
      if (values.json) io.out.write(`${JSON.stringify(rows, null, 2)}\n`);
      else if (values.csv) io.out.write(countsCsv(rows));
      else io.out.write(countsTable(rows, counts.coverage(since, until), since, Math.min(until, at)));
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

export function countsCsv(rows: readonly CountsRow[]): string {
  const quote = (text: string): string => (/[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text);
  const lines = ['from,to,cameraId,lineId,direction,vehicleType,count'];
  for (const row of rows) lines.push([row.from, row.to, row.cameraId, row.lineId, row.direction, row.vehicleType, String(row.count)].map(quote).join(','));
  return `${lines.join('\n')}\n`;
}

/** One table row per bucket, camera, line and direction; a column per type that has any count. */
export function countsTable(rows: readonly CountsRow[], coverage: ReturnType<CountsReader['coverage']>, since: number, until: number): string {
  const out = [`counts ${new Date(since).toISOString()} .. ${new Date(until).toISOString()}`];
  for (const camera of coverage) out.push(`  ${camera.cameraId}: ${camera.intervals} intervals, ${camera.frames} frames tracked`);
  if (rows.length === 0) return `${out.join('\n')}\n  no vehicle counted\n`;
  const types = vehicleTypes.filter((type) => rows.some((row) => row.vehicleType === type));
  const groups = new Map<string, { key: string[]; byType: Map<string, number> }>();
  for (const row of rows) {
    const key = [row.from, row.cameraId, row.lineId, row.direction];
    const id = key.join('\u0000');
    const group = groups.get(id) ?? { key, byType: new Map<string, number>() };
    group.byType.set(row.vehicleType, (group.byType.get(row.vehicleType) ?? 0) + row.count);
    groups.set(id, group);
  }
  const header = ['from', 'camera', 'line', 'direction', ...types, 'total'];
  const body = [...groups.values()].map(({ key, byType }) => [
    key[0]!.replace('T', ' ').replace(/\.000Z$/, 'Z'),
    key[1]!,
    key[2]!,
    key[3]!,
    ...types.map((type) => String(byType.get(type) ?? 0)),
    String([...byType.values()].reduce((sum, n) => sum + n, 0)),
  ]);
  const numeric = new Set(Array.from({ length: types.length + 1 }, (_, i) => 4 + i));
  return `${out.join('\n')}\n${formatTable([header, ...body], { rightAligned: numeric })}`;
}
