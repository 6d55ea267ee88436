/**
 * Tracking and counting (issue #18), printed from one run on this machine:
 *  1. the tracker's cost per frame with 30 detections (30 vehicles moving through the picture,
 *     with misses and low scores), mean and p99 over BENCH_FRAMES updates, and the heap growth
 *     per frame (update() should allocate nothing; with --expose-gc the heap is measured after a
 *     full collection at both ends);
 *  2. on the highway clip: the real agent (compiled, dist/) runs the real model on every frame
 *     (25 fps, realtime: false, so nothing is dropped); its detections are then replayed through
 *     the tracker and the counting line of test/fixtures/highway-line-count.json at 25, 12.5,
 *     5 and 2.5 frames a second (every 1st, 2nd, 5th, 10th frame), and with the boxes not
 *     enlarged (expand 0) at 5 fps. Printed per rate: vehicles counted against the hand count,
 *     and the fragmentation and ID-switch proxies of the tracks that pass through a zone around
 *     the line on the right carriageway (x 0.42-0.92, y 0.35-0.65), where every vehicle is in
 *     full view: tracks per vehicle counted by hand (1.0 with no break; the lorry and the cyclist,
 *     never detected, pull it under), tracks born and tracks dead inside the zone (a vehicle is
 *     neither born nor gone there: each such track is a break or a switch), and crossings a track
 *     counted on the line it had already crossed (0 by construction: counted once).
 *
 * Run: node --expose-gc scripts/run-ts.mjs bench/tracking.ts   (BENCH_FRAMES, default 20000; BENCH_CLIP=0 skips
 * part 2; part 2 needs ./build.sh and the test assets)
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { CountingLine } from '../agent/config/counting-schema.js';
import { crossingDirection } from '../agent/counting/crossing.js';
import type { Vehicle } from '../agent/inference/result.js';
import { ByteTracker, FREE, TRACKED, type TrackerOptions } from '../agent/tracking/tracker.js';
import { killIfRunning, spawnAgent } from '../test/support/agent-process.js';
import { assetPath } from '../test/support/assets.js';

const FRAMES = Number(process.env['BENCH_FRAMES'] ?? 20_000);
const gc = (globalThis as { gc?: () => void }).gc;
const percentile = (values: Float64Array | number[], p: number): number => {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
};

/** 30 vehicles on 6 lanes, each looping down the picture at its own speed; some frames missed, some weak. */
function syntheticFrames(count: number): Vehicle[][] {
  const frames: Vehicle[][] = [];
  for (let f = 0; f < count; f++) {
    const list: Vehicle[] = [];
    for (let v = 0; v < 30; v++) {
      const lane = v % 6;
      const speed = 0.02 + (v % 5) * 0.006;
      const y = (((v * 0.137 + f * speed) % 1.2) - 0.1) as number;
      if ((f + v) % 17 === 0) continue; // missed
      const score = (f + v) % 7 === 0 ? 0.35 : 0.75;
      list.push({ type: v % 9 === 0 ? 'truck' : 'car', label: 'car', score, box: [0.05 + lane * 0.15, y, 0.08, 0.06] });
    }
    frames.push(list);
  }
  return frames;
}

function costPerFrame(): void {
  // Built before timing: the frames are the input, not the tracker's allocation.
  const frames = syntheticFrames(1000);
  const tracker = new ByteTracker();
  const times = new Float64Array(FRAMES);
  for (let f = 0; f < 500; f++) tracker.update(f * 200, frames[f % frames.length]!); // warm-up
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  for (let f = 0; f < FRAMES; f++) {
    const list = frames[f % frames.length]!;
    const start = process.hrtime.bigint();
    tracker.update((500 + f) * 200, list);
    times[f] = Number(process.hrtime.bigint() - start) / 1e6;
  }
  gc?.();
  const heapAfter = process.memoryUsage().heapUsed;
  let mean = 0;
  for (const t of times) mean += t;
  mean /= FRAMES;
  console.log('## Tracker cost per frame, 30 detections');
  console.log(`frames ${FRAMES}; tracks alive at the end ${tracker.alive}; born ${tracker.born}, confirmed ${tracker.confirmed}`);
  console.log(
    `mean ${(mean * 1000).toFixed(1)} us, p50 ${(percentile(times, 0.5) * 1000).toFixed(1)} us, p99 ${(percentile(times, 0.99) * 1000).toFixed(1)} us, max ${(percentile(times, 1) * 1000).toFixed(1)} us`,
  );
  console.log(
    `heap growth ${(((heapAfter - heapBefore) / FRAMES) as number).toFixed(2)} bytes per frame (${gc ? 'after full collections' : 'without --expose-gc: collections in between hide or add garbage'})`,
  );
}

interface ClipFrame {
  seq: number;
  vehicles: Vehicle[];
}

/** The model's detections on every frame of the clip, from the real agent. */
async function clipDetections(): Promise<ClipFrame[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-tracking-'));
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(
    config,
    [
      'deviceId: bench-tracking',
      `dataDir: ${dir}`,
      'cameras:',
      `  - { id: clip, url: "${assetPath('highway-cctv-320x240.mp4')}", sampleFps: null, realtime: false, loop: false }`,
      'mqtt: { enabled: false }',
      'counting: { enabled: false }',
      '',
    ].join('\n'),
  );
  const agent = spawnAgent(['run', '--config', config]);
  try {
    await agent.waitForLog((line) => line.msg === 'camera state' && line['to'] === 'ended', 300_000);
    agent.kill('SIGTERM');
    await agent.exited;
  } finally {
    await killIfRunning(agent);
  }
  const db = new Database(path.join(dir, 'agent.db'), { readonly: true });
  const rows = db.prepare('SELECT seq, vehicles FROM results ORDER BY seq').all() as Array<{ seq: number; vehicles: string }>;
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const first = rows[0]?.seq ?? 0;
  return rows.map((row) => ({ seq: row.seq - first, vehicles: JSON.parse(row.vehicles) as Vehicle[] }));
}

const ZONE = { x0: 0.42, x1: 0.92, y0: 0.35, y1: 0.65 };
const inZone = (x: number, y: number): boolean => x >= ZONE.x0 && x <= ZONE.x1 && y >= ZONE.y0 && y <= ZONE.y1;

function replay(frames: ClipFrame[], every: number, line: CountingLine, options: Partial<TrackerOptions> = {}) {
  const tracker = new ByteTracker(options);
  const counted = new Map<number, string>();
  let recrossed = 0;
  const zoneTracks = new Set<number>();
  let bornInZone = 0;
  let diedInZone = 0;
  const lastSeenInZone = new Map<number, boolean>();
  const seen = new Set<number>();
  const nativeMs = 40;
  for (const frame of frames) {
    if (frame.seq % every !== 0) continue;
    const before = new Map<number, boolean>();
    for (let slot = 0; slot < tracker.capacity; slot++) if (tracker.status[slot] !== FREE) before.set(tracker.ids[slot]!, true);
    tracker.update(frame.seq * nativeMs, frame.vehicles);
    const alive = new Set<number>();
    for (let slot = 0; slot < tracker.capacity; slot++) {
      if (tracker.status[slot] === FREE) continue;
      const id = tracker.ids[slot]!;
      alive.add(id);
      if (tracker.status[slot] !== TRACKED || tracker.movedAt[slot] !== tracker.frame) continue;
      const here = inZone(tracker.toX[slot]!, tracker.toY[slot]!);
      if (here) zoneTracks.add(id);
      if (!seen.has(id)) {
        seen.add(id);
        // Where the confirmed track was first seen (its birth detection).
        if (inZone(tracker.fromX[slot]!, tracker.fromY[slot]!)) bornInZone++;
      }
      lastSeenInZone.set(id, here);
      const direction = crossingDirection(
        line.from[0],
        line.from[1],
        line.to[0],
        line.to[1],
        tracker.fromX[slot]!,
        tracker.fromY[slot]!,
        tracker.toX[slot]!,
        tracker.toY[slot]!,
      );
      if (direction === -1 && line.directions.rightToLeft !== undefined) {
        if (counted.has(id)) recrossed++;
        else counted.set(id, tracker.typeOf(slot));
      }
    }
    for (const id of before.keys()) if (!alive.has(id) && lastSeenInZone.get(id) === true) diedInZone++;
  }
  const byType: Record<string, number> = {};
  for (const type of counted.values()) byType[type] = (byType[type] ?? 0) + 1;
  return { counted: counted.size, byType, confirmed: tracker.confirmed, zoneTracks: zoneTracks.size, bornInZone, diedInZone, recrossed };
}

async function clip(): Promise<void> {
  const fixture = JSON.parse(fs.readFileSync(new URL('../test/fixtures/highway-line-count.json', import.meta.url), 'utf8')) as {
    line: CountingLine;
    counts: { total: number; carLike: number };
  };
  const started = Date.now();
  const frames = await clipDetections();
  console.log('');
  console.log(`## The highway clip (${frames.length} frames at 25 fps, detections from the real agent in ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  console.log(`hand count on line "${fixture.line.id}": ${fixture.counts.total} vehicles (${fixture.counts.carLike} car-like)`);
  console.log('');
  console.log(
    '| frames/s | tracker | counted | by type | confirmed tracks (whole picture) | tracks in the zone | per vehicle by hand | per vehicle counted | born in zone | dead in zone | counted twice |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  const runs: Array<[number, string, Partial<TrackerOptions>]> = [
    [1, 'default', {}],
    [2, 'default', {}],
    [5, 'default', {}],
    [10, 'default', {}],
    [5, 'expand 0', { expand: 0 }],
    [5, 'expand 0.25', { expand: 0.25 }],
    [5, 'expand 1', { expand: 1 }],
    [10, 'expand 0', { expand: 0 }],
    [10, 'expand 1', { expand: 1 }],
  ];
  for (const [every, label, options] of runs) {
    const r = replay(frames, every, fixture.line, options);
    console.log(
      `| ${(25 / every).toFixed(1)} | ${label} | ${r.counted} | ${JSON.stringify(r.byType)} | ${r.confirmed} | ${r.zoneTracks} | ${(r.zoneTracks / fixture.counts.total).toFixed(2)} | ${(r.zoneTracks / r.counted).toFixed(2)} | ${r.bornInZone} | ${r.diedInZone} | ${r.recrossed} |`,
    );
  }
}

costPerFrame();
if (process.env['BENCH_CLIP'] !== '0') await clip();
