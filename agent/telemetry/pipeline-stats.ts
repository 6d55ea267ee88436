import type { InferenceResult } from '../inference/result.js';

export interface StatsWindow {
  seconds: number;
  frames: number;
  fps: number;
  inferenceP50: number;
  inferenceP95: number;
  /** Vehicles seen per type in the window. */
  vehicles: Record<string, number>;
}

const RING = 1024;

/**
 * Counts results as they pass, once per frame, for every reader (the status line, telemetry);
 * constant memory. Each reader takes its own windows (StatsReader), so a frame is recorded
 * once however many readers there are.
 */
export class PipelineStats {
  /** The last RING inference times; sample i sits at i % RING. */
  readonly inferenceMs = new Float64Array(RING);
  /** Scratch space for percentiles: windows are taken synchronously, one at a time. */
  readonly sorted = new Float64Array(RING);
  samples = 0;
  /** Vehicles per type since the agent started. */
  readonly vehicles = new Map<string, number>();
  /** Results per camera since the agent started. */
  readonly framesOutByCamera = new Map<string, number>();

  constructor(readonly now: () => number = Date.now) {}

  get totalResults(): number {
    return this.samples;
  }

  record(result: InferenceResult): void {
    this.inferenceMs[this.samples % RING] = result.inferenceMs;
    this.samples++;
    this.framesOutByCamera.set(result.cameraId, (this.framesOutByCamera.get(result.cameraId) ?? 0) + 1);
    for (const vehicle of result.vehicles) this.vehicles.set(vehicle.type, (this.vehicles.get(vehicle.type) ?? 0) + 1);
  }

  /** A reader whose first window starts now. */
  reader(): StatsReader {
    return new StatsReader(this);
  }
}

/** One consumer's windows over the shared counts: each takeWindow() covers the time since the last. */
export class StatsReader {
  private windowStart: number;
  private samplesAtStart: number;
  private vehiclesAtStart = new Map<string, number>();

  constructor(private readonly stats: PipelineStats) {
    this.windowStart = stats.now();
    this.samplesAtStart = stats.samples;
    for (const [type, count] of stats.vehicles) this.vehiclesAtStart.set(type, count);
  }

  /** The figures since the last call, then starts a new window. */
  takeWindow(): StatsWindow {
    const { stats } = this;
    const now = stats.now();
    const seconds = Math.max((now - this.windowStart) / 1000, 0.001);
    const frames = stats.samples - this.samplesAtStart;
    const count = Math.min(frames, RING);
    // The newest `count` samples are this window's (up to the ring size).
    for (let i = 0; i < count; i++) stats.sorted[i] = stats.inferenceMs[(stats.samples - 1 - i + RING * 2) % RING]!;
    const window = stats.sorted.subarray(0, count).sort();
    const percentile = (p: number): number => (count === 0 ? 0 : window[Math.min(count - 1, Math.floor(p * count))]!);
    const vehicles: Record<string, number> = {};
    for (const [type, total] of stats.vehicles) {
      const inWindow = total - (this.vehiclesAtStart.get(type) ?? 0);
      if (inWindow > 0) vehicles[type] = inWindow;
      this.vehiclesAtStart.set(type, total);
    }
    this.windowStart = now;
    this.samplesAtStart = stats.samples;
    return { seconds, frames, fps: frames / seconds, inferenceP50: percentile(0.5), inferenceP95: percentile(0.95), vehicles };
  }
}
