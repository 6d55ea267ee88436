import { describe, expect, it } from 'vitest';
import { countsCommand } from '../../agent/cli/counts-command.js';
import { countingSchema } from '../../agent/config/counting-schema.js';
import type { ClosedInterval } from '../../agent/counting/camera-counter.js';
import { CountStore } from '../../agent/counting/count-store.js';
import { vehicleTypes } from '../../agent/common/vehicle-types.js';
import { captureIo, createAgentDatabase } from '../telemetry/fixture.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-counts-cli-');
const T0 = Date.UTC(2026, 0, 5, 8, 0, 0);
const MINUTE = 60_000;

function interval(startAt: number, counts: Partial<Record<(typeof vehicleTypes)[number], number>>, direction = 'away'): ClosedInterval {
  const full = Object.fromEntries(vehicleTypes.map((type) => [type, counts[type] ?? 0])) as ClosedInterval['lines'][number]['counts'];
  const total = Object.values(full).reduce((sum, n) => sum + n, 0);
  return { cameraId: 'highway', startAt, intervalMs: MINUTE, frames: 300, lines: [{ lineId: 'right', direction, counts: full, total }] };
}

/** A data dir with 20 one-minute intervals: 3 cars and, every fifth minute, a truck. */
function fill(): string {
  const dir = tempDir();
  const { db } = createAgentDatabase(dir);
  const store = new CountStore(db);
  db.transaction(() => {
    for (let m = 0; m < 20; m++) store.writeInterval(interval(T0 + m * MINUTE, { car: 3, truck: m % 5 === 0 ? 1 : 0 }), `m${m}`, '{}');
  })();
  db.close();
  expect(countingSchema.parse({}).intervalSeconds).toBe(60);
  return dir;
}

async function run(argv: string[]) {
  const io = captureIo();
  const code = await countsCommand(argv, io, () => T0 + 30 * MINUTE);
  return { code, out: io.stdout(), err: io.stderr() };
}

describe('cctv-agent counts', () => {
  it('a table over the period, a column per type that has counts', async () => {
    const dir = fill();
    const { code, out } = await run(['--data-dir', dir, '--since', '1h']);
    expect(code).toBe(0);
    expect(out).toContain('highway: 20 intervals, 6000 frames tracked');
    expect(out).toMatch(/camera +line +direction +car +truck +total/);
    expect(out).toMatch(/highway +right +away +60 +4 +64/);
  });

  it('--bucket 10m --csv: one row per bucket and type, aligned on the clock', async () => {
    const dir = fill();
    const { code, out } = await run(['--data-dir', dir, '--since', '1h', '--bucket', '10m', '--csv']);
    expect(code).toBe(0);
    expect(out.trim().split('\n')).toEqual([
      'from,to,cameraId,lineId,direction,vehicleType,count',
      '2026-01-05T08:00:00.000Z,2026-01-05T08:10:00.000Z,highway,right,away,car,30',
      '2026-01-05T08:00:00.000Z,2026-01-05T08:10:00.000Z,highway,right,away,truck,2',
      '2026-01-05T08:10:00.000Z,2026-01-05T08:20:00.000Z,highway,right,away,car,30',
      '2026-01-05T08:10:00.000Z,2026-01-05T08:20:00.000Z,highway,right,away,truck,2',
    ]);
  });

  it('--json, --camera and usage errors', async () => {
    const dir = fill();
    const json = await run(['--data-dir', dir, '--since', '1h', '--bucket', '5m', '--json']);
    const rows = JSON.parse(json.out) as Array<{ vehicleType: string; count: number }>;
    expect(rows.filter((row) => row.vehicleType === 'truck').map((row) => row.count)).toEqual([1, 1, 1, 1]);
    expect((await run(['--data-dir', dir, '--camera', 'other', '--since', '1h'])).out).toContain('no vehicle counted');
    expect((await run(['--data-dir', dir, '--json', '--csv'])).code).toBe(2);
    expect((await run(['--data-dir', dir, '--bucket', '1s'])).err).toMatch(/USAGE: --bucket "1s"/);
  });
});
