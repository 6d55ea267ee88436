import type { InferenceResult } from '../inference/result.js';

/**
 * Why a frame was kept. A dispute is not a third reason but a mark set later, by feedback, on a
 * sample already kept: by the time a reviewer disputes a result its frame is long gone, unless
 * it was sampled.
 */
export const sampleReasons = ['random', 'low-confidence'] as const;
export type SampleReason = (typeof sampleReasons)[number];

export interface SamplerSettings {
  randomShare: number;
  lowConfidenceBelow: number;
  lowConfidencePerHour: number;
}

const WINDOW_MS = 60 * 60 * 1000;

/**
 * Chooses the frames kept as evidence. The uniform draw comes first and is made on every
 * frame whatever it shows: a frame's chance of being a `random` sample is then the same for all
 * frames, which is what makes precision measured on labelled random samples unbiased
 * (docs/evidence.md). Only frames the draw passed over may become `low-confidence` samples,
 * limited per camera over a sliding hour of capture time and spaced at least half the even
 * spacing apart (60 s at 30 an hour).
 */
export class EvidenceSampler {
  /** Per camera, the capture times of the low-confidence samples taken in the last hour, oldest first. */
  private readonly taken = new Map<string, number[]>();

  constructor(
    private readonly settings: SamplerSettings,
    private readonly random: () => number = Math.random,
  ) {}

  /** The reason to keep this frame, or undefined. Allocates nothing. */
  choose(result: InferenceResult): SampleReason | undefined {
    const { randomShare, lowConfidenceBelow, lowConfidencePerHour } = this.settings;
    if (randomShare > 0 && this.random() < randomShare) return 'random';
    if (lowConfidencePerHour === 0) return undefined;
    const vehicles = result.vehicles;
    let low = false;
    for (let i = 0; i < vehicles.length; i++) {
      if (vehicles[i]!.score < lowConfidenceBelow) {
        low = true;
        break;
      }
    }
    if (!low) return undefined;
    const times = this.taken.get(result.cameraId);
    // Spaced out over the hour: consecutive frames are near-duplicates (poor evidence), and a
    // burst of copies and encodes at start would load the frame path for nothing.
    if (times !== undefined && times.length > 0 && result.capturedAt - times[times.length - 1]! < WINDOW_MS / lowConfidencePerHour / 2) return undefined;
    return this.inWindow(result.cameraId, result.capturedAt) < lowConfidencePerHour ? 'low-confidence' : undefined;
  }

  /**
   * The chosen frame is being kept (the encoder was free): it counts against its camera's hourly
   * limit. A frame dropped because the encoder was busy does not use up the limit.
   */
  took(result: InferenceResult, reason: SampleReason): void {
    if (reason !== 'low-confidence') return;
    let times = this.taken.get(result.cameraId);
    if (!times) {
      times = [];
      this.taken.set(result.cameraId, times);
    }
    times.push(result.capturedAt);
  }

  /** Low-confidence samples of the camera within the hour before `at`, dropping older ones. */
  private inWindow(cameraId: string, at: number): number {
    const times = this.taken.get(cameraId);
    if (!times) return 0;
    let expired = 0;
    while (expired < times.length && times[expired]! <= at - WINDOW_MS) expired++;
    if (expired > 0) times.splice(0, expired);
    return times.length;
  }
}
