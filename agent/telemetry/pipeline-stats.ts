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

/** Counts results as they pass, for the status line and telemetry; constant memory. */
export class PipelineStats {
  private readonly inferenceMs = new Float64Array(RING);
  private readonly sorted = new Float64Array(RING);
  private samples = 0;
  private frames = 0;
  private readonly vehicles = new Map<string, number>();
  private windowStart: number;
  totalResults = 0;
  /** Results per camera since the agent started. */
  readonly framesOutByCamera = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {
    this.windowStart = now();
  }

  record(result: InferenceResult): void {
    this.inferenceMs[this.samples % RING] = result.inferenceMs;
    this.samples++;
    this.frames++;
    this.totalResults++;
    this.framesOutByCamera.set(result.cameraId, (this.framesOutByCamera.get(result.cameraId) ?? 0) + 1);
    for (const vehicle of result.vehicles) this.vehicles.set(vehicle.type, (this.vehicles.get(vehicle.type) ?? 0) + 1);
  }

  /** The figures since the last call, then starts a new window. */
  takeWindow(): StatsWindow {
    const now = this.now();
    const seconds = Math.max((now - this.windowStart) / 1000, 0.001);
    const count = Math.min(this.samples, RING, this.frames);
    // The newest `count` samples are this window's (up to the ring size).
    for (let i = 0; i < count; i++) this.sorted[i] = this.inferenceMs[(this.samples - 1 - i + RING * 2) % RING]!;
    const window = this.sorted.subarray(0, count).sort();
    const percentile = (p: number): number => (count === 0 ? 0 : window[Math.min(count - 1, Math.floor(p * count))]!);
    const result: StatsWindow = {
      seconds,
      frames: this.frames,
      fps: this.frames / seconds,
      inferenceP50: percentile(0.5),
      inferenceP95: percentile(0.95),
      vehicles: Object.fromEntries(this.vehicles),
    };
    this.frames = 0;
    this.vehicles.clear();
    this.windowStart = now;
    return result;
  }
}
