import { type VehicleType, vehicleTypes } from '../common/vehicle-types.js';
import type { CountingLine, TrackerConfig } from '../config/counting-schema.js';
import type { Vehicle } from '../inference/result.js';
import { ByteTracker, TRACKED } from '../tracking/tracker.js';
import { crossingDirection } from './crossing.js';

const TYPES = vehicleTypes.length;
const typeIndex = new Map<string, number>(vehicleTypes.map((type, index) => [type, index]));
/** Direction slots per line: 0 leftToRight, 1 rightToLeft. */
const DIRECTIONS = 2;

/** One closed interval of a camera: what the store writes and the payload carries. */
export interface ClosedInterval {
  cameraId: string;
  startAt: number;
  intervalMs: number;
  frames: number;
  /** Per line and counted direction (in config order), counts per type in vehicleTypes order. */
  lines: Array<{ lineId: string; direction: string; counts: Record<VehicleType, number>; total: number }>;
}

/**
 * One camera's tracker, lines and the counts of the interval in progress. observe() is on the
 * frame path: the tracker's update, a check per moved track and line, and a few typed-array
 * writes; it allocates only when an interval closes (once a minute).
 */
export class CameraCounter {
  readonly tracker: ByteTracker;
  private lines: readonly CountingLine[] = [];
  /** counts[(line * DIRECTIONS + direction) * TYPES + type] of the interval in progress. */
  private counts = new Int32Array(0);
  /** Per slot and line: 1 once the slot's track was counted on the line. */
  private countedOn = new Uint8Array(0);
  /** Per slot: the track id `countedOn` belongs to (a reused slot starts afresh). */
  private readonly countedId: Int32Array;
  private startAt = -1;
  private frames = 0;
  /** Intervals before this start are closed: a late frame counts in the next open one. */
  private closedBefore = Number.NEGATIVE_INFINITY;
  crossings = 0;

  constructor(
    readonly cameraId: string,
    lines: readonly CountingLine[],
    tracker: TrackerConfig,
    private readonly intervalMs: number,
    /**
     * Set for a file read faster than real time (realtime: false): the tracker's clock is then
     * frame number x this (the media time at the sampling rate), not the arrival time, which
     * follows the model's speed and would make every vehicle look faster or slower than it is.
     */
    readonly frameIntervalMs?: number,
  ) {
    this.tracker = new ByteTracker({
      highScore: tracker.highScore,
      newTrackScore: tracker.newTrackScore,
      expand: tracker.expand,
      maxLostSeconds: tracker.maxLostSeconds,
      confirmHits: tracker.confirmHits,
    });
    this.countedId = new Int32Array(this.tracker.capacity);
    this.setLines(lines);
  }

  get lineCount(): number {
    return this.lines.length;
  }

  /** New lines (a config change): the interval in progress keeps counting on the lines it started with only if they are the same. */
  setLines(lines: readonly CountingLine[]): void {
    if (JSON.stringify(lines) === JSON.stringify(this.lines)) return;
    this.lines = lines;
    this.counts = new Int32Array(lines.length * DIRECTIONS * TYPES);
    this.countedOn = new Uint8Array(this.tracker.capacity * Math.max(1, lines.length));
    this.countedId.fill(0);
  }

  /**
   * Tracks one frame's vehicles (writing each confirmed track's id into its vehicle) and counts
   * the tracks that crossed a line. Returns the interval it closed, if the frame opened a new one.
   */
  observe(capturedAt: number, seq: number, vehicles: Vehicle[]): ClosedInterval | undefined {
    const tracker = this.tracker;
    tracker.update(this.frameIntervalMs === undefined ? capturedAt : seq * this.frameIntervalMs, vehicles);
    for (let i = 0; i < vehicles.length; i++) {
      const id = tracker.assigned[i]!;
      if (id !== 0) vehicles[i]!.trackId = id;
    }
    let closed: ClosedInterval | undefined;
    const bucket = Math.max(Math.floor(capturedAt / this.intervalMs) * this.intervalMs, this.closedBefore);
    if (this.startAt !== bucket) {
      if (this.startAt >= 0 && bucket > this.startAt) closed = this.close();
      if (bucket > this.startAt) this.startAt = bucket;
    }
    this.frames++;
    const lineCount = this.lines.length;
    if (lineCount === 0) return closed;
    for (let slot = 0; slot < tracker.capacity; slot++) {
      if (tracker.status[slot] !== TRACKED || tracker.movedAt[slot] !== tracker.frame) continue;
      if (this.countedId[slot] !== tracker.ids[slot]) {
        this.countedId[slot] = tracker.ids[slot]!;
        this.countedOn.fill(0, slot * lineCount, slot * lineCount + lineCount);
      }
      for (let l = 0; l < lineCount; l++) {
        if (this.countedOn[slot * lineCount + l] === 1) continue;
        const line = this.lines[l]!;
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
        if (direction === 0) continue;
        const label = direction === 1 ? line.directions.leftToRight : line.directions.rightToLeft;
        if (label === undefined) continue;
        // Once per line, whichever way: a vehicle stopping on the line and jittering across it counts once.
        this.countedOn[slot * lineCount + l] = 1;
        const type = typeIndex.get(tracker.typeOf(slot)) ?? TYPES - 1;
        this.counts[(l * DIRECTIONS + (direction === 1 ? 0 : 1)) * TYPES + type]!++;
        this.crossings++;
      }
    }
    return closed;
  }

  /** Closes the interval in progress if it ended before `cutoff` (a camera gone quiet); undefined otherwise. */
  closeIfEndedBefore(cutoff: number): ClosedInterval | undefined {
    if (this.startAt < 0 || this.startAt + this.intervalMs > cutoff) return undefined;
    const closed = this.close();
    this.startAt = -1;
    return closed;
  }

  private close(): ClosedInterval {
    const lines: ClosedInterval['lines'] = [];
    this.lines.forEach((line, l) => {
      const labels = [line.directions.leftToRight, line.directions.rightToLeft];
      labels.forEach((label, d) => {
        if (label === undefined) return;
        const counts = {} as Record<VehicleType, number>;
        let total = 0;
        vehicleTypes.forEach((type, t) => {
          const n = this.counts[(l * DIRECTIONS + d) * TYPES + t]!;
          counts[type] = n;
          total += n;
        });
        lines.push({ lineId: line.id, direction: label, counts, total });
      });
    });
    const closed: ClosedInterval = { cameraId: this.cameraId, startAt: this.startAt, intervalMs: this.intervalMs, frames: this.frames, lines };
    this.counts.fill(0);
    this.frames = 0;
    this.closedBefore = this.startAt + this.intervalMs;
    return closed;
  }
}
