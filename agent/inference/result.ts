import type { VehicleType } from './manifest.js';

/** One detected vehicle. box = [x, y, width, height], normalised to the source picture (0..1). */
export interface Vehicle {
  type: VehicleType;
  label: string;
  score: number;
  box: [number, number, number, number];
  /** The best-scoring other vehicle type for this box (a car/truck confusion is information). */
  runnerUp?: { type: VehicleType; label: string; score: number };
  /** The tracker's id of this vehicle on its camera (agent/tracking/), once its track is confirmed. */
  trackId?: number;
}

export interface ClassScore {
  label: string;
  type: VehicleType | null;
  score: number;
}

/** What the agent reports for one frame; always names the model that produced it. */
export interface InferenceResult {
  cameraId: string;
  seq: number;
  capturedAt: number;
  model: { id: string; version: string };
  task: 'detection' | 'classification';
  vehicles: Vehicle[];
  /** Classifiers only: the top-k classes. */
  top?: ClassScore[];
  inferenceMs: number;
}
