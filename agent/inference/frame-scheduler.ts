import { errorMessage } from '../errors.js';
import type { LatestFrameSlot } from '../ingest/frame-slot.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { FrameInference } from './inference-service.js';
import type { InferenceResult } from './result.js';

export interface SchedulerDeps {
  /** Read at start: the ingest service creates its slots when it starts. */
  slots: () => LatestFrameSlot[];
  inference: FrameInference;
  onResult: (result: InferenceResult) => void;
  log: Logger;
}

const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * Feeds the one shared model from every camera's latest-frame slot, round-robin so that a
 * busy camera cannot starve another. Frames that arrive while the model is busy replace
 * the waiting one in their slot (counted as dropped there), so nothing queues without bound.
 */
export class FrameScheduler implements Service {
  readonly name = 'scheduler';
  private slots: LatestFrameSlot[] = [];
  private next = 0;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private processed = 0;
  private errors = 0;
  private lastErrorLog = 0;
  lastResultAt = 0;

  constructor(private readonly deps: SchedulerDeps) {}

  private readonly signalReady = (): void => this.wake?.();

  async start(): Promise<void> {
    this.running = true;
    this.refreshSlots();
    this.loop = this.run();
  }

  /** Cameras came or went: read the slot list again. A frame in flight is released to its own slot. */
  refreshSlots(): void {
    for (const slot of this.slots) slot.setReadyListener(undefined);
    this.slots = this.deps.slots();
    this.next = 0;
    for (const slot of this.slots) slot.setReadyListener(this.signalReady);
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const slot of this.slots) slot.setReadyListener(undefined);
    this.wake?.();
    await this.loop;
  }

  private takeNextSlot(): LatestFrameSlot | undefined {
    const count = this.slots.length;
    for (let i = 0; i < count; i++) {
      const slot = this.slots[(this.next + i) % count]!;
      if (slot.hasReady) {
        this.next = (this.next + i + 1) % count;
        return slot;
      }
    }
    return undefined;
  }

  /**
   * After stop() the loop still takes the frames already decoded: the cameras stop before the
   * scheduler, so a shutdown loses no frame that reached a slot.
   */
  private async run(): Promise<void> {
    for (;;) {
      const slot = this.takeNextSlot();
      if (!slot) {
        if (!this.running) return;
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      const frame = slot.take()!;
      try {
        const result = await this.deps.inference.infer(frame);
        this.processed++;
        this.lastResultAt = Date.now();
        this.deps.onResult(result);
      } catch (error) {
        this.errors++;
        if (Date.now() - this.lastErrorLog > ERROR_LOG_INTERVAL_MS) {
          this.lastErrorLog = Date.now();
          this.deps.log.error({ err: errorMessage(error), camera: frame.cameraId, errors: this.errors }, 'inference failed');
        }
      } finally {
        slot.release(frame);
      }
    }
  }

  health(): Health {
    return { ok: this.running, state: this.running ? 'running' : 'stopped', detail: { processed: this.processed, errors: this.errors } };
  }
}
