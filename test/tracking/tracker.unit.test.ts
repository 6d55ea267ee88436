import { describe, expect, it } from 'vitest';
import type { VehicleType } from '../../agent/common/vehicle-types.js';
import { crossingDirection } from '../../agent/counting/crossing.js';
import { ByteTracker, expandedIou, FREE, TRACKED } from '../../agent/tracking/tracker.js';

interface Det {
  type: VehicleType;
  score: number;
  box: [number, number, number, number];
}

/** A vehicle moving at constant speed: centre at frame f, its size, and its score per frame. */
interface Mover {
  x0: number;
  y0: number;
  vx: number;
  vy: number;
  w: number;
  h: number;
  type?: VehicleType;
  /** Score at frame f; below 0 means not detected in that frame. */
  score?: (frame: number) => number;
}

const FPS = 5;
const STEP_MS = 1000 / FPS;

function detectionsAt(movers: Mover[], frame: number): Det[] {
  const out: Det[] = [];
  for (const m of movers) {
    const score = m.score ? m.score(frame) : 0.8;
    if (score < 0) continue;
    const cx = m.x0 + m.vx * frame;
    const cy = m.y0 + m.vy * frame;
    out.push({ type: m.type ?? 'car', score, box: [cx - m.w / 2, cy - m.h / 2, m.w, m.h] });
  }
  return out;
}

/** A horizontal counting line across the picture at y = 0.5. */
const LINE = { ax: 0, ay: 0.5, bx: 1, by: 0.5 };

/** Runs the tracker over `frames` frames; returns the ids given to each mover per frame and the counted crossings. */
function run(movers: Mover[], frames: number, tracker = new ByteTracker()) {
  const idsByMover: number[][] = movers.map(() => []);
  const counted = new Map<number, { direction: number; type: VehicleType }>();
  let doubleCounts = 0;
  for (let f = 0; f < frames; f++) {
    // Each frame's detections in a shuffled order: the tracker must not depend on it.
    const present = movers.map((m, i) => ({ m, i })).filter(({ m }) => (m.score ? m.score(f) : 0.8) >= 0);
    const dets = detectionsAt(
      present.map(({ m }) => m),
      f,
    );
    const order = dets.map((_, i) => i).reverse();
    const shuffled = order.map((i) => dets[i]!);
    tracker.update(f * STEP_MS, shuffled);
    order.forEach((originalIndex, position) => {
      idsByMover[present[originalIndex]!.i]!.push(tracker.assigned[position]!);
    });
    for (let slot = 0; slot < tracker.capacity; slot++) {
      if (tracker.status[slot] !== TRACKED || tracker.movedAt[slot] !== tracker.frame) continue;
      const direction = crossingDirection(
        LINE.ax,
        LINE.ay,
        LINE.bx,
        LINE.by,
        tracker.fromX[slot]!,
        tracker.fromY[slot]!,
        tracker.toX[slot]!,
        tracker.toY[slot]!,
      );
      if (direction === 0) continue;
      const id = tracker.ids[slot]!;
      if (counted.has(id)) doubleCounts++;
      else counted.set(id, { direction, type: tracker.typeOf(slot) });
    }
  }
  return { idsByMover, counted, doubleCounts, tracker };
}

/** The distinct non-zero ids a mover was given. */
const distinct = (ids: number[]): number[] => [...new Set(ids.filter((id) => id !== 0))];

describe('ByteTracker on synthetic tracks', () => {
  it('follows one vehicle crossing the line with one id and counts it once', () => {
    const { idsByMover, counted, doubleCounts } = run([{ x0: 0.5, y0: 0.1, vx: 0, vy: 0.05, w: 0.08, h: 0.06 }], 18);
    expect(distinct(idsByMover[0]!)).toHaveLength(1);
    // Only the first sighting has no id: the track is confirmed at its second match.
    expect(idsByMover[0]!.slice(1).every((id) => id !== 0)).toBe(true);
    expect(counted.size).toBe(1);
    expect([...counted.values()][0]).toEqual({ direction: 1, type: 'car' });
    expect(doubleCounts).toBe(0);
  });

  it('keeps a fast vehicle that moves more than its own length between frames (the enlarged IoU)', () => {
    // 0.07 per frame with a 0.05-high box: no overlap at all between two plain boxes.
    const mover: Mover = { x0: 0.5, y0: 0.05, vx: 0, vy: 0.07, w: 0.06, h: 0.05 };
    expect(run([mover], 14).counted.size).toBe(1);
    expect(distinct(run([mover], 14).idsByMover[0]!)).toHaveLength(1);
  });

  it('keeps the id through an occlusion of a few frames', () => {
    // Not detected at frames 7, 8 and 9 (0.6 s at 5 fps), right where it crosses the line.
    const { idsByMover, counted, doubleCounts } = run(
      [{ x0: 0.3, y0: 0.1, vx: 0.01, vy: 0.04, w: 0.08, h: 0.06, score: (f) => (f >= 7 && f <= 9 ? -1 : 0.8) }],
      20,
    );
    expect(distinct(idsByMover[0]!)).toHaveLength(1);
    expect(counted.size).toBe(1);
    expect(doubleCounts).toBe(0);
  });

  it('keeps the id through scattered missed detections and low-score frames (the second association)', () => {
    const score = (f: number) => (f % 4 === 2 ? -1 : f % 3 === 1 ? 0.35 : 0.8);
    const { idsByMover, counted } = run([{ x0: 0.7, y0: 0.95, vx: 0, vy: -0.04, w: 0.1, h: 0.08, score }], 24);
    expect(distinct(idsByMover[0]!)).toHaveLength(1);
    expect(counted.size).toBe(1);
    expect([...counted.values()][0]!.direction).toBe(-1);
  });

  it('keeps two vehicles side by side apart, and two crossing paths', () => {
    const movers: Mover[] = [
      { x0: 0.4, y0: 0.05, vx: 0, vy: 0.05, w: 0.08, h: 0.06 },
      { x0: 0.5, y0: 0.05, vx: 0, vy: 0.05, w: 0.08, h: 0.06, type: 'truck' },
      // Two more overtaking each other diagonally: their paths cross at frame 8.
      { x0: 0.1, y0: 0.1, vx: 0.05, vy: 0.05, w: 0.07, h: 0.05 },
      { x0: 0.9, y0: 0.1, vx: -0.05, vy: 0.05, w: 0.07, h: 0.05, type: 'bus' },
    ];
    const { idsByMover, counted, doubleCounts } = run(movers, 16);
    const ids = idsByMover.map(distinct);
    for (const one of ids) expect(one).toHaveLength(1);
    expect(new Set(ids.map((one) => one[0])).size).toBe(4);
    expect(counted.size).toBe(4);
    expect(doubleCounts).toBe(0);
    expect([...counted.values()].map((c) => c.type).sort()).toEqual(['bus', 'car', 'car', 'truck']);
  });

  it('decides the type by score-weighted vote over the life of the track', () => {
    // Called a truck in most frames, a car in a few confident ones.
    const mover: Mover = { x0: 0.5, y0: 0.1, vx: 0, vy: 0.05, w: 0.1, h: 0.08, type: 'truck' };
    const tracker = new ByteTracker();
    for (let f = 0; f < 10; f++) {
      const [det] = detectionsAt([mover], f);
      if (f % 3 === 0) det!.type = 'car';
      tracker.update(f * STEP_MS, [det!]);
    }
    const slot = tracker.status.indexOf(TRACKED);
    expect(tracker.typeOf(slot)).toBe('truck');
  });

  it('lets a track die after maxLostSeconds; a vehicle reappearing later gets a new id', () => {
    const tracker = new ByteTracker({ maxLostSeconds: 1 });
    const mover: Mover = { x0: 0.5, y0: 0.3, vx: 0, vy: 0, w: 0.1, h: 0.08 };
    for (let f = 0; f < 5; f++) tracker.update(f * STEP_MS, detectionsAt([mover], f));
    const first = tracker.assigned[0];
    expect(first).toBeGreaterThan(0);
    // Gone for 1.2 s: lost, then dead.
    for (let f = 5; f < 11; f++) tracker.update(f * STEP_MS, []);
    expect(tracker.alive).toBe(0);
    expect([...tracker.status].every((s) => s === FREE)).toBe(true);
    tracker.update(11 * STEP_MS, detectionsAt([mover], 11));
    tracker.update(12 * STEP_MS, detectionsAt([mover], 12));
    expect(tracker.assigned[0]).toBeGreaterThan(first!);
  });

  it('starts no track from a low-score detection alone, and drops a one-frame ghost', () => {
    const tracker = new ByteTracker();
    const weak = detectionsAt([{ x0: 0.5, y0: 0.5, vx: 0, vy: 0, w: 0.1, h: 0.1, score: () => 0.4 }], 0);
    for (let f = 0; f < 5; f++) tracker.update(f * STEP_MS, weak);
    expect(tracker.born).toBe(0);
    tracker.update(5 * STEP_MS, detectionsAt([{ x0: 0.2, y0: 0.2, vx: 0, vy: 0, w: 0.1, h: 0.1 }], 0));
    tracker.update(6 * STEP_MS, []);
    expect(tracker.born).toBe(1);
    expect(tracker.confirmed).toBe(0);
    expect(tracker.alive).toBe(0);
  });

  it('counts a slow vehicle stopping on the line once (jitter about the line)', () => {
    const tracker = new ByteTracker();
    const ys = [0.3, 0.35, 0.4, 0.45, 0.49, 0.505, 0.495, 0.51, 0.49, 0.52, 0.55, 0.6];
    let crossings = 0;
    const counted = new Set<number>();
    ys.forEach((y, f) => {
      tracker.update(f * STEP_MS, [{ type: 'car', score: 0.9, box: [0.45, y - 0.03, 0.1, 0.06] }]);
      for (let slot = 0; slot < tracker.capacity; slot++) {
        if (tracker.status[slot] !== TRACKED || tracker.movedAt[slot] !== tracker.frame) continue;
        if (crossingDirection(0, 0.5, 1, 0.5, tracker.fromX[slot]!, tracker.fromY[slot]!, tracker.toX[slot]!, tracker.toY[slot]!) === 0) continue;
        crossings++;
        counted.add(tracker.ids[slot]!);
      }
    });
    expect(crossings).toBeGreaterThan(1);
    expect(counted.size).toBe(1);
  });

  it('has no slot left over after many vehicles passed (no leak of tracks)', () => {
    const tracker = new ByteTracker({ maxTracks: 16 });
    for (let f = 0; f < 400; f++) {
      // A new vehicle every 5 frames, each visible for 20 frames.
      const movers: Mover[] = [];
      for (let k = Math.max(0, Math.floor(f / 5) - 3); k <= Math.floor(f / 5); k++) {
        const age = f - k * 5;
        movers.push({ x0: 0.1 + (k % 5) * 0.18, y0: 0.05 + age * 0.045, vx: 0, vy: 0, w: 0.08, h: 0.06 });
      }
      tracker.update(f * STEP_MS, detectionsAt(movers, 0));
    }
    expect(tracker.overflow).toBe(0);
    expect(tracker.alive).toBeLessThanOrEqual(8);
    expect(tracker.confirmed).toBe(80);
  });
});

describe('expandedIou and crossingDirection', () => {
  it('IoU of identical boxes is 1, of far boxes 0; enlarging makes near boxes overlap', () => {
    expect(expandedIou(0.5, 0.5, 0.1, 0.1, 0.5, 0.5, 0.1, 0.1, 0.5)).toBeCloseTo(1);
    expect(expandedIou(0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.1, 0.1, 0.5)).toBe(0);
    // Touching edge to edge: 0 plain; enlarged by half, (0.05 x 0.15) / (2 x 0.0225 - 0.0075).
    expect(expandedIou(0.5, 0.5, 0.1, 0.1, 0.6, 0.5, 0.1, 0.1, 0)).toBeCloseTo(0, 9);
    expect(expandedIou(0.5, 0.5, 0.1, 0.1, 0.6, 0.5, 0.1, 0.1, 0.5)).toBeCloseTo(0.0075 / (0.045 - 0.0075), 6);
  });

  it('tells the direction and ignores moves past the ends of the line', () => {
    // Line from (0.2, 0.5) to (0.8, 0.5): standing at its start facing +x, the left is up (y smaller).
    expect(crossingDirection(0.2, 0.5, 0.8, 0.5, 0.5, 0.4, 0.5, 0.6)).toBe(1);
    expect(crossingDirection(0.2, 0.5, 0.8, 0.5, 0.5, 0.6, 0.5, 0.4)).toBe(-1);
    expect(crossingDirection(0.2, 0.5, 0.8, 0.5, 0.9, 0.4, 0.9, 0.6)).toBe(0);
    expect(crossingDirection(0.2, 0.5, 0.8, 0.5, 0.5, 0.4, 0.5, 0.45)).toBe(0);
    // Ending exactly on the line counts (the right side); leaving it again does not cross back.
    expect(crossingDirection(0.2, 0.5, 0.8, 0.5, 0.5, 0.4, 0.5, 0.5)).toBe(1);
    expect(crossingDirection(0.2, 0.5, 0.8, 0.5, 0.5, 0.5, 0.5, 0.6)).toBe(0);
  });
});
