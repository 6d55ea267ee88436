import { errorMessage } from '../errors.js';
import type { Frame } from '../ingest/frame.js';
import type { LatestFrameSlot } from '../ingest/frame-slot.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { ActiveModel } from './inference-service.js';
import type { Lane, LoadedModel } from './loaded-model.js';
import type { Picture } from './picture.js';
import type { InferenceResult } from './result.js';

export interface SchedulerDeps {
  /** Read on start and whenever cameras come or go. */
  slots: () => LatestFrameSlot[];
  models: ActiveModel;
  /**
   * Every result, in frame order. `picture` gives the frame the model saw (RGB, for an evidence
   * sample): it is cheap only because it is lazy, and valid only during this call.
   */
  onResult: (result: InferenceResult, picture: () => Picture) => void;
  /** Every frame as it is taken, before its buffer goes back (drift statistics on a sample of them). */
  onFrame?: (frame: Frame) => void;
  log: Logger;
}

/** A frame preprocessed into a lane: the model that prepared it runs and finishes it, even across a swap. */
interface Prepared {
  model: LoadedModel;
  lane: Lane;
}

interface InFlight extends Prepared {
  done: boolean;
  failure: Error | undefined;
}

const ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * Feeds the one shared model from every camera's latest-frame slot, round-robin so that a
 * busy camera cannot starve another. Frames that arrive while the model is busy replace the
 * waiting one in their slot (counted as dropped there), so nothing queues without bound.
 *
 * Pipelined: while onnxruntime runs frame N (in the model's worker thread), frame N+1 is taken,
 * preprocessed and queued in the worker as soon as it arrives, so the worker starts it the
 * moment N is done, without a round trip through the main thread; N is decoded while N+1 runs.
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

  /**
   * A lane may be free again outside the scheduler's own runs (a still image ran, or stopped
   * holding the lanes back): look for frames now rather than at the next frame's arrival, which
   * for a camera that waits for the scheduler (a file read without -re) would never come.
   */
  nudge(): void {
    this.wake?.();
  }

  /** Cameras came or went: read the slot list again. */
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

  private anyReady(): boolean {
    for (const slot of this.slots) if (slot.hasReady) return true;
    return false;
  }

  /** Takes the next frame into a lane of the active model and gives its buffer back at once. */
  private prepareNext(): Prepared | undefined {
    const model = this.deps.models.active;
    if (!model?.canPrepare) return undefined;
    const slot = this.takeNextSlot();
    if (!slot) return undefined;
    const frame = slot.take()!;
    try {
      this.deps.onFrame?.(frame);
      return { model, lane: model.prepare(frame) };
    } finally {
      slot.release(frame);
    }
  }

  private launch({ model, lane }: Prepared): InFlight {
    const work: InFlight = { model, lane, done: false, failure: undefined };
    model.execute(lane).then(
      () => this.settle(work, undefined),
      (error: unknown) => this.settle(work, error instanceof Error ? error : new Error(String(error))),
    );
    return work;
  }

  private settle(work: InFlight, failure: Error | undefined): void {
    work.done = true;
    work.failure = failure;
    this.wake?.();
  }

  private complete(work: InFlight): void {
    const { failure } = work;
    if (failure) {
      work.model.abandon(work.lane);
      this.errors++;
      if (Date.now() - this.lastErrorLog > ERROR_LOG_INTERVAL_MS) {
        this.lastErrorLog = Date.now();
        this.deps.log.error({ err: errorMessage(failure), camera: work.lane.cameraId, errors: this.errors }, 'inference failed');
      }
      return;
    }
    const result = work.model.finish(work.lane);
    this.processed++;
    this.lastResultAt = Date.now();
    // The lane is free but not yet reused (nothing else runs until this returns): its input
    // still holds the frame.
    this.deps.onResult(result, () => work.model.pictureOf(work.lane));
  }

  /**
   * Up to two frames in flight (the model's two lanes): one running, one queued behind it in
   * the worker. The loop sleeps until a run ends or a frame arrives; results are completed in
   * the order their frames were taken, even across a swap (two models' workers).
   *
   * After stop() the loop still takes the frames already decoded: the cameras stop before the
   * scheduler, so a shutdown loses no frame that reached a slot.
   */
  private async run(): Promise<void> {
    const inFlight: InFlight[] = [];
    for (;;) {
      const prepared = this.prepareNext();
      if (prepared) {
        inFlight.push(this.launch(prepared));
        continue;
      }
      if (inFlight.length > 0 && inFlight[0]!.done) {
        this.complete(inFlight.shift()!);
        continue;
      }
      if (inFlight.length === 0) {
        if (this.anyReady() && this.deps.models.active?.canPrepare) continue;
        if (!this.running) return;
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
      this.wake = undefined;
    }
  }

  health(): Health {
    return { ok: this.running, state: this.running ? 'running' : 'stopped', detail: { processed: this.processed, errors: this.errors } };
  }
}
