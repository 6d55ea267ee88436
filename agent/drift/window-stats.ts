import { vehicleTypes } from '../common/vehicle-types.js';
import type { InferenceResult } from '../inference/result.js';

/** Continuous features of a sampled frame (one value per frame), compared by Kolmogorov-Smirnov. */
export const inputFeatures = ['luminance', 'contrast', 'sharpness', 'saturation', 'nearBlack', 'blownOut'] as const;
export type InputFeature = (typeof inputFeatures)[number];

/** Per-detection values, compared by Kolmogorov-Smirnov. */
export const detectionFeatures = ['score', 'boxSize'] as const;
export type DetectionFeature = (typeof detectionFeatures)[number];

/** Distributions (counts per bin), compared by PSI and Jensen-Shannon. */
export const histogramFeatures = ['colour', 'vehicleType', 'vehiclesPerFrame', 'boxPosition'] as const;
export type HistogramFeature = (typeof histogramFeatures)[number];

export const HISTOGRAM_BINS: Record<HistogramFeature, number> = {
  colour: 24, // 8 bins per channel, R G B
  vehicleType: vehicleTypes.length,
  vehiclesPerFrame: 11, // 0 .. 9, 10 or more
  boxPosition: 16, // box centres on a 4 x 4 grid of the picture
};

const FRAME_CAPACITY = 4096;
const DETECTION_CAPACITY = 2000;
const TYPE_INDEX = new Map<string, number>(vehicleTypes.map((type, index) => [type, index]));

/**
 * A reservoir of at most `capacity` values (Vitter's algorithm R): every value seen has the same
 * chance to be in it, in fixed memory, with no allocation per value.
 */
class Reservoir {
  readonly values: Float32Array;
  count = 0;
  seen = 0;

  constructor(capacity: number) {
    this.values = new Float32Array(capacity);
  }

  /** Adds a value; returns the slot it took, or -1 when it was not kept. */
  add(value: number, random: () => number): number {
    this.seen++;
    if (this.count < this.values.length) {
      this.values[this.count] = value;
      return this.count++;
    }
    const slot = Math.floor(random() * this.seen);
    if (slot >= this.values.length) return -1;
    this.values[slot] = value;
    return slot;
  }

  view(): Float32Array {
    return this.values.subarray(0, this.count);
  }

  reset(): void {
    this.count = 0;
    this.seen = 0;
  }
}

/** What a window (or a reference) holds, as stored and shipped (JSON). */
export interface StatsSnapshot {
  from: number;
  to: number;
  frames: number;
  results: number;
  detections: number;
  input: Record<InputFeature, number[]>;
  detection: Record<DetectionFeature, number[]>;
  histograms: Record<HistogramFeature, number[]>;
}

/**
 * The statistics of one camera over one window: per sampled frame the input features, per
 * result the prediction features. Fixed memory, reused from window to window: nothing is
 * allocated per frame or per detection.
 */
export class WindowStats {
  from = 0;
  to = 0;
  frames = 0;
  results = 0;
  private readonly input = new Map<InputFeature, Reservoir>(inputFeatures.map((feature) => [feature, new Reservoir(FRAME_CAPACITY)]));
  private readonly detection = new Map<DetectionFeature, Reservoir>(detectionFeatures.map((feature) => [feature, new Reservoir(DETECTION_CAPACITY)]));
  readonly histograms: Record<HistogramFeature, Float64Array> = {
    colour: new Float64Array(HISTOGRAM_BINS.colour),
    vehicleType: new Float64Array(HISTOGRAM_BINS.vehicleType),
    vehiclesPerFrame: new Float64Array(HISTOGRAM_BINS.vehiclesPerFrame),
    boxPosition: new Float64Array(HISTOGRAM_BINS.boxPosition),
  };
  /** Scores by vehicle type index, for the label-free precision estimate. */
  readonly scoreTypes = new Uint8Array(DETECTION_CAPACITY);

  constructor(private readonly random: () => number = Math.random) {}

  reset(at: number): void {
    this.from = at;
    this.to = at;
    this.frames = 0;
    this.results = 0;
    for (const reservoir of this.input.values()) reservoir.reset();
    for (const reservoir of this.detection.values()) reservoir.reset();
    for (const histogram of Object.values(this.histograms)) histogram.fill(0);
  }

  addInput(feature: InputFeature, value: number): void {
    this.input.get(feature)!.add(value, this.random);
  }

  frameSampled(at: number): void {
    this.frames++;
    this.to = Math.max(this.to, at);
  }

  addResult(result: InferenceResult): void {
    this.results++;
    this.to = Math.max(this.to, result.capturedAt);
    const vehicles = result.vehicles;
    this.histograms.vehiclesPerFrame[Math.min(10, vehicles.length)]! += 1;
    const scores = this.detection.get('score')!;
    const sizes = this.detection.get('boxSize')!;
    for (let i = 0; i < vehicles.length; i++) {
      const vehicle = vehicles[i]!;
      const typeIndex = TYPE_INDEX.get(vehicle.type) ?? vehicleTypes.length - 1;
      this.histograms.vehicleType[typeIndex]! += 1;
      // Indexed, not destructured: destructuring allocates an iterator until V8 optimises the
      // function, and at 5 results a second it stays unoptimised for long (a heap profile showed it).
      const box = vehicle.box;
      const x = box[0];
      const y = box[1];
      const w = box[2];
      const h = box[3];
      const column = Math.min(3, Math.max(0, Math.floor((x + w / 2) * 4)));
      const row = Math.min(3, Math.max(0, Math.floor((y + h / 2) * 4)));
      this.histograms.boxPosition[row * 4 + column]! += 1;
      // The score's slot in the reservoir decides where its type goes, so the two stay paired.
      const slot = scores.add(vehicle.score, this.random);
      if (slot >= 0) this.scoreTypes[slot] = typeIndex;
      sizes.add(Math.sqrt(Math.max(0, w * h)), this.random);
    }
  }

  get detections(): number {
    return this.detection.get('score')!.seen;
  }

  inputValues(feature: InputFeature): Float32Array {
    return this.input.get(feature)!.view();
  }

  detectionValues(feature: DetectionFeature): Float32Array {
    return this.detection.get(feature)!.view();
  }

  /** The (type index, score) pairs kept for the estimate. */
  scoredTypes(): { scores: Float32Array; types: Uint8Array } {
    const scores = this.detection.get('score')!.view();
    return { scores, types: this.scoreTypes.subarray(0, scores.length) };
  }

  snapshot(): StatsSnapshot {
    return {
      from: this.from,
      to: this.to,
      frames: this.frames,
      results: this.results,
      detections: this.detections,
      input: Object.fromEntries(inputFeatures.map((feature) => [feature, Array.from(this.inputValues(feature), round)])) as Record<InputFeature, number[]>,
      detection: Object.fromEntries(detectionFeatures.map((feature) => [feature, Array.from(this.detectionValues(feature), round)])) as Record<
        DetectionFeature,
        number[]
      >,
      histograms: Object.fromEntries(histogramFeatures.map((feature) => [feature, Array.from(this.histograms[feature])])) as Record<HistogramFeature, number[]>,
    };
  }
}

const round = (value: number): number => Math.round(value * 10_000) / 10_000;
