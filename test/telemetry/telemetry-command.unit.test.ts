import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { migrations } from '../../agent/storage/migrations.js';
import { MAX_COLUMNS, formatBytes, formatDuration, formatFollowLine } from '../../agent/cli/telemetry-format.js';
import { telemetryReportSchema } from '../../agent/cli/telemetry-report.js';
import { defaultBucketMs, parseDuration, parseInstant, telemetryCommand } from '../../agent/cli/telemetry-command.js';
import { telemetrySampleSchema } from '../../agent/telemetry/telemetry-sample.js';
import { TelemetryReader } from '../../agent/telemetry/telemetry-reader.js';
import { useTempDir } from '../support/temp-dir.js';
import { waitFor } from '../support/wait.js';
import { MINUTE, T0, captureIo, createAgentDatabase, insertEvent, insertResult, insertSample, makeSample } from './fixture.js';

const tempDir = useTempDir('cctv-telemetry-cli-');
const NOW = T0 + 60 * MINUTE;

/** A data directory with an hour of samples (every 30 s), results (every 10 s) and a few events. */
function fillDataDir(): string {
  const dir = tempDir();
  const { db } = createAgentDatabase(dir);
  db.transaction(() => {
    for (let second = 0; second < 3600; second += 30) {
      insertSample(db, makeSample(T0 + second * 1000, { cpu: 20 + ((second / 30) % 50), fps: 4.5 + ((second / 30) % 5) / 10, p50: 9 + ((second / 30) % 7) }));
    }
    for (let second = 0; second < 3600; second += 10)
      insertResult(db, T0 + second * 1000, second % 20 === 0 ? ['car', 'truck'] : ['car'], second % 60 === 0 ? 'south' : 'north');
    insertEvent(db, T0 + 5 * MINUTE, 'camera-state', 'north', 'SOURCE_REFUSED', 'connection refused by 192.0.2.10:554 '.repeat(6));
    insertEvent(db, T0 + 6 * MINUTE, 'camera-state', 'north', null, 'streaming');
  })();
  db.close();
  fs.writeFileSync(
    path.join(dir, 'status.json'),
    JSON.stringify({
      pid: 999_999_999,
      deviceId: 'edge-status',
      startedAt: new Date(T0).toISOString(),
      writtenAt: new Date(NOW).toISOString(),
      state: 'stopped',
      model: undefined,
      services: {},
    }),
  );
  return dir;
}

async function run(argv: string[], now = NOW): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo();
  const code = await telemetryCommand(argv, io, { now: () => now });
  return { code, out: io.stdout(), err: io.stderr() };
}

const LATEST_SCHEMA = migrations.at(-1)!.version;

describe('durations and defaults', () => {
  it('parses durations, instants and picks a bucket that gives about 12 rows', () => {
    expect(parseDuration('15m')).toBe(15 * MINUTE);
    expect(parseDuration('1h30m')).toBe(90 * MINUTE);
    expect(parseDuration('2d')).toBe(2 * 86_400_000);
    expect(parseDuration('0.5h')).toBe(30 * MINUTE);
    for (const bad of ['', '1', 'h', '1x', '-1h', '1 h', '0s']) expect(parseDuration(bad)).toBeUndefined();
    expect(parseInstant('1h', NOW, '--since')).toBe(NOW - 60 * MINUTE);
    expect(parseInstant('now', NOW, '--until')).toBe(NOW);
    expect(parseInstant('2026-11-27T12:00Z', NOW, '--since')).toBe(T0);
    expect(parseInstant('2026-11-27 12:00', NOW, '--since')).toBe(T0); // no offset: UTC
    expect(parseInstant('2026-11-27T13:00:00+01:00', NOW, '--since')).toBe(T0);
    expect(() => parseInstant('yesterday', NOW, '--since')).toThrow(expect.objectContaining({ code: 'USAGE' }));
    expect(defaultBucketMs(60 * MINUTE)).toBe(5 * MINUTE);
    expect(defaultBucketMs(24 * 60 * MINUTE)).toBe(2 * 60 * MINUTE);
    expect(defaultBucketMs(15 * MINUTE)).toBe(2 * MINUTE);
    expect(formatDuration(90 * MINUTE)).toBe('1h 30m');
    expect(formatDuration(30_000)).toBe('30s');
    expect(formatBytes(5 * 1024 ** 2)).toBe('5.00 MiB');
    expect(formatBytes(512)).toBe('512 B');
  });
});

describe('cctv-agent telemetry (in process)', () => {
  it('--json: one document matching the published schema, with exact counts', async () => {
    const dir = fillDataDir();
    const { code, out, err } = await run(['--data-dir', dir, '--json', '--since', '30m']);
    expect(err).toBe('');
    expect(code).toBe(0);
    const report = telemetryReportSchema.parse(JSON.parse(out));
    expect(report.deviceId).toBe('edge-status');
    expect(report.agent).toMatchObject({ state: 'stopped' });
    expect(report.database).toMatchObject({ file: path.join(dir, 'agent.db'), schemaVersion: LATEST_SCHEMA, readMode: 'direct' });
    expect(report.range).toEqual({ since: new Date(NOW - 30 * MINUTE).toISOString(), until: new Date(NOW).toISOString(), cameraId: null, bucketSeconds: 180 });
    expect(report.samples).toBe(60);
    expect(report.vehicles.results).toBe(180);
    expect(report.vehicles.totals).toEqual({ car: 180, truck: 90 });
    expect(report.vehicles.cameras).toEqual({ north: 150, south: 30 });
    expect(report.vehicles.buckets).toHaveLength(10);
    expect(report.vehicles.buckets.every((bucket) => bucket.results === 18)).toBe(true);
    expect(report.events.total).toBe(0); // both events are older than 30 minutes
    expect(telemetrySampleSchema.parse(report.latest!.sample)).toMatchObject({ deviceId: 'edge-test' });
    expect(report.latest!.at).toBe(new Date(T0 + 3570 * 1000).toISOString());
    expect(report.fields.cpuPercent).toMatchObject({ count: 60 });
  });

  it('--camera and --bucket filter the results-based figures only', async () => {
    const dir = fillDataDir();
    const { code, out } = await run([
      '--data-dir',
      dir,
      '--json',
      '--since',
      '2026-11-27T12:00Z',
      '--until',
      '2026-11-27T12:30Z',
      '--camera',
      'south',
      '--bucket',
      '10m',
    ]);
    expect(code).toBe(0);
    const report = telemetryReportSchema.parse(JSON.parse(out));
    expect(report.vehicles.buckets.map((bucket) => [bucket.start, bucket.results, bucket.vehicles])).toEqual([
      ['2026-11-27T12:00:00.000Z', 10, { car: 10, truck: 10 }],
      ['2026-11-27T12:10:00.000Z', 10, { car: 10, truck: 10 }],
      ['2026-11-27T12:20:00.000Z', 10, { car: 10, truck: 10 }],
    ]);
    expect(report.samples).toBe(60); // telemetry is device-wide: not filtered by camera
    expect(report.events.total).toBe(2);
  });

  it('the human report has every section, fits in 100 columns, and charts 60 columns at most', async () => {
    const dir = fillDataDir();
    const { code, out, err } = await run(['--data-dir', dir]);
    expect(err).toBe('');
    expect(code).toBe(0);
    console.log(out);
    const lines = out.trimEnd().split('\n');
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(MAX_COLUMNS);
    expect(lines[0]).toBe('cctv-agent telemetry: device edge-status, agent stopped (last status 2026-11-27T13:00:00.000Z)');
    expect(out).toContain(`database ${path.join(dir, 'agent.db')} (schema ${LATEST_SCHEMA},`);
    expect(out).toContain('range    2026-11-27 12:00:00 .. 2026-11-27 13:00:00 UTC (1h), all cameras: 120 samples, 360 results');
    expect(out).toMatch(/latest sample 2026-11-27 12:59:30 UTC \(30s ago, 30s interval\), model yolox-nano-int8@1\.0\.0/);
    expect(out).toMatch(/cpu %\s+\d/);
    expect(out).toMatch(/north\s+streaming\s+1000\s+990\s+10\s+1\s+5\.0\s+-/);
    expect(out).toMatch(/over the range\s+min\s+median\s+max\s+samples/);
    expect(out).toMatch(/vehicles per type per 5m \(all cameras; from results, UTC\)/);
    expect(out).toMatch(/12:00\s+30\s+30\s+15\s+45/);
    expect(out).toMatch(/total\s+360\s+360\s+180\s+540/);
    expect(out).toContain('results per camera: north 300, south 60');
    expect(out).toContain('events (2)');
    expect(out).toMatch(/11-27 12:05:00\s+camera-state\s+north\s+SOURCE_REFUSED\s+connection refused/);
    const charts = lines.slice(lines.findIndex((line) => line.startsWith('charts')));
    expect(charts[0]).toContain('1m per column');
    expect(charts).toHaveLength(4);
    for (const chart of charts.slice(1)) expect([...(/[▁▂▃▄▅▆▇█]+/.exec(chart)?.[0] ?? '')].length).toBe(60);
  });

  it('follow lines are one short line per sample', () => {
    const line = formatFollowLine(TelemetryRowOf(makeSample(T0, { cpu: 35.25, temperature: 51 })));
    expect(line.length).toBeLessThanOrEqual(MAX_COLUMNS);
    expect(line).toBe('12:00:00 cpu 35% 51°C mem 2.0G disk 20G rss 200M 5.0 fps infer 10/14 ms outbox 0 db 5.0M cams 1/1');
  });

  it('--follow in process: prints the latest, then each new sample, and stops on abort with 0', async () => {
    const dir = tempDir();
    const { db } = createAgentDatabase(dir);
    insertSample(db, makeSample(T0));
    const io = captureIo();
    const stop = new AbortController();
    const running = telemetryCommand(['--data-dir', dir, '--follow', '--json'], io, { signal: stop.signal, pollMs: 50 });
    await waitFor(() => io.stdout().split('\n').filter(Boolean).length === 1, 5000);
    insertSample(db, makeSample(T0 + 30_000, { cpu: 1 }));
    insertSample(db, makeSample(T0 + 60_000, { cpu: 2 }));
    await waitFor(() => io.stdout().split('\n').filter(Boolean).length === 3, 5000);
    stop.abort();
    expect(await running).toBe(0);
    db.close();
    const lines = io
      .stdout()
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { at: string; values: { cpuPercent: number } });
    expect(lines.map((line) => line.values.cpuPercent)).toEqual([40, 1, 2]);
    expect(io.stderr()).toBe('');
  });
});

describe('errors: a clear line with the code, and the exit code', () => {
  it('a missing database: STORAGE_READ_FAILED naming the file, exit 3', async () => {
    const dir = tempDir();
    const { code, out, err } = await run(['--data-dir', dir]);
    expect(code).toBe(3);
    expect(out).toBe('');
    expect(err).toBe(
      `cctv-agent: STORAGE_READ_FAILED: no database at ${path.join(dir, 'agent.db')}: no agent has run with this data directory (or storage.fileName differs) (fix: check that dataDir points at an agent's data directory and that its database is readable)\n`,
    );
  });

  it('a bad duration, an unknown option, a reversed range, a tiny bucket: USAGE, exit 2', async () => {
    const dir = fillDataDir();
    const cases: Array<[string[], RegExp]> = [
      [['--since', '1x'], /^cctv-agent: USAGE: --since "1x": give a duration ago/],
      [['--bogus'], /^cctv-agent: USAGE: telemetry: Unknown option '--bogus'/],
      [['extra'], /^cctv-agent: USAGE: telemetry: .*positional/i],
      [['--since', '1h', '--until', '2h'], /^cctv-agent: USAGE: --since .* must be before --until/],
      [['--since', '2d', '--bucket', '1s'], /^cctv-agent: USAGE: --bucket 1s makes 172800 rows/],
      [['--bucket', 'soon'], /^cctv-agent: USAGE: --bucket "soon"/],
      [['--follow', '--until', '1h'], /^cctv-agent: USAGE: --until cannot be combined with --follow/],
    ];
    for (const [args, expected] of cases) {
      const { code, out, err } = await run(['--data-dir', dir, ...args]);
      expect(err, args.join(' ')).toMatch(expected);
      expect(err).toContain('(fix: run `cctv-agent help`');
      expect(code, args.join(' ')).toBe(2);
      expect(out).toBe('');
    }
  });

  it('no config and no --data-dir: the config error and a hint, exit 2', async () => {
    const { code, err } = await run(['--config', path.join(tempDir(), 'missing.yaml')]);
    expect(code).toBe(2);
    expect(err).toMatch(/CONFIG_NOT_FOUND: config file .*missing\.yaml does not exist/);
    expect(err).toContain('give --data-dir DIR');
  });

  it('the database and fileName come from the config when one is given', async () => {
    const dir = fillDataDir();
    fs.renameSync(path.join(dir, 'agent.db'), path.join(dir, 'other.db'));
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(config, `deviceId: from-config\ndataDir: ${dir}\nstorage: { fileName: other.db }\ncameras: [{ id: north, url: "rtsp://192.0.2.1/x" }]\n`);
    const { code, out, err } = await run(['--config', config, '--json']);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(telemetryReportSchema.parse(JSON.parse(out))).toMatchObject({ deviceId: 'from-config', database: { file: path.join(dir, 'other.db') } });
  });
});

function TelemetryRowOf(sample: ReturnType<typeof makeSample>): Parameters<typeof formatFollowLine>[0] {
  const dir = tempDir();
  const { db, file } = createAgentDatabase(dir);
  insertSample(db, sample);
  db.close();
  const reader = TelemetryReader.open(file)!;
  const row = reader.latest()!;
  reader.close();
  return row;
}
