import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { assetPath } from '../support/assets.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-line-count-');

interface LineCountFixture {
  line: { id: string; from: [number, number]; to: [number, number]; directions: { rightToLeft: string } };
  typeMap: { carLike: string[] };
  counts: { car: number; van: number; truck: number; bicycle: number; total: number; carLike: number };
}
const fixture = JSON.parse(fs.readFileSync(new URL('../fixtures/highway-line-count.json', import.meta.url), 'utf8')) as LineCountFixture;

/**
 * Issue #18's acceptance on the real agent, model and clip: the vehicles crossing a line across
 * the right carriageway, counted by hand (test/fixtures/highway-line-count.md), against the
 * agent's stored interval counts. The clip is a file camera read with realtime: false, so every
 * sampled frame (5 a second) reaches the model however loaded the machine is, and played once.
 */
describe('counting on the highway clip against a hand count', () => {
  let agent: AgentProcess | undefined;
  afterAll(() => killIfRunning(agent));

  it('counts within 10 % of the hand count in total and for car-like vehicles', async () => {
    const dir = tempDir();
    const config = path.join(dir, 'config.yaml');
    const { line } = fixture;
    fs.writeFileSync(
      config,
      [
        'deviceId: line-count',
        `dataDir: ${path.join(dir, 'data')}`,
        'cameras:',
        `  - id: highway`,
        `    url: "${assetPath('highway-cctv-320x240.mp4')}"`,
        '    sampleFps: 5',
        '    realtime: false',
        '    loop: false',
        '    lines:',
        `      - { id: ${line.id}, from: [${line.from.join(', ')}], to: [${line.to.join(', ')}], directions: { rightToLeft: ${line.directions.rightToLeft} } }`,
        'mqtt: { enabled: false }',
        '',
      ].join('\n'),
    );
    agent = spawnAgent(['run', '--config', config]);
    await agent.waitForLog((entry) => entry.msg === 'camera state' && entry['to'] === 'ended', 120_000);
    // The interval in progress is written at stop.
    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);

    const db = new Database(path.join(dir, 'data', 'agent.db'), { readonly: true });
    const rows = db.prepare('SELECT vehicle_type AS type, sum(count) AS n FROM counts WHERE line_id = ? GROUP BY vehicle_type').all(line.id) as Array<{
      type: string;
      n: number;
    }>;
    const frames = (db.prepare('SELECT sum(frames) AS n FROM count_intervals').get() as { n: number }).n;
    const tracks = new Set<number>();
    for (const row of db.prepare('SELECT vehicles FROM results').all() as Array<{ vehicles: string }>) {
      for (const vehicle of JSON.parse(row.vehicles) as Array<{ trackId?: number }>) if (vehicle.trackId !== undefined) tracks.add(vehicle.trackId);
    }
    db.close();
    const by = Object.fromEntries(rows.map((row) => [row.type, row.n])) as Record<string, number>;
    const total = rows.reduce((sum, row) => sum + row.n, 0);
    const carLike = fixture.typeMap.carLike.reduce((sum, type) => sum + (by[type] ?? 0), 0);
    const error = (agent: number, hand: number) => (agent - hand) / hand;
    console.log(
      `line count on the highway clip (${frames} frames at 5 fps, ${tracks.size} confirmed tracks): agent ${JSON.stringify(by)}, total ${total}; ` +
        `by hand ${JSON.stringify(fixture.counts)}; car-like ${carLike} vs ${fixture.counts.carLike} (${(error(carLike, fixture.counts.carLike) * 100).toFixed(1)} %), ` +
        `total ${total} vs ${fixture.counts.total} (${(error(total, fixture.counts.total) * 100).toFixed(1)} %)`,
    );
    expect(frames).toBeGreaterThanOrEqual(145);
    expect(Math.abs(error(total, fixture.counts.total))).toBeLessThanOrEqual(0.1);
    // Per type where the hand count has at least 5: car-like only.
    expect(Math.abs(error(carLike, fixture.counts.carLike))).toBeLessThanOrEqual(0.1);
  }, 180_000);
});
