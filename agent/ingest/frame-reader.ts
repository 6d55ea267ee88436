import type { LatestFrameSlot } from './frame-slot.js';

/**
 * Cuts ffmpeg's raw stdout into exact frames, copying chunk bytes straight into the slot's
 * write buffer. A frame is published only when complete; a partial frame at the end of a
 * run is discarded by reset().
 *
 * With `waitForModel` (a file read faster than real time), the reader stops at a frame the
 * model has not taken yet and keeps the rest of the chunk (by reference) until resume(): a
 * stream's last read can hold several frames at once.
 */
export class FrameReader {
  private filled = 0;
  private seq: number;
  /** Chunks waiting for the model; the first is consumed from heldOffset. */
  private readonly held: Buffer[] = [];
  private heldOffset = 0;
  sourceWidth = 0;
  sourceHeight = 0;
  lastFrameAt = 0;
  waitForModel = false;

  constructor(
    private readonly slot: LatestFrameSlot,
    private readonly frameBytes: number,
    firstSeq = 0,
    private readonly now: () => number = Date.now,
  ) {
    this.seq = firstSeq;
  }

  get nextSeq(): number {
    return this.seq;
  }

  /** True while part of a chunk waits for the model to take the ready frame. */
  get holding(): boolean {
    return this.held.length > 0;
  }

  push(chunk: Buffer): void {
    // Chunks that arrive while others are held queue behind them (a stream being flushed at
    // ffmpeg's exit is resumed by Node itself, whatever we paused).
    if (this.held.length > 0) this.held.push(chunk);
    else this.consume(chunk, 0);
  }

  /** The model took the ready frame: continue with the held bytes. */
  resume(): void {
    while (this.held.length > 0 && !(this.waitForModel && this.slot.hasReady)) {
      const chunk = this.held.shift()!;
      const offset = this.heldOffset;
      this.heldOffset = 0;
      if (!this.consume(chunk, offset)) return;
    }
  }

  /** Returns false when it stopped to wait for the model (the rest of the chunk is held first in line). */
  private consume(chunk: Buffer, from: number): boolean {
    let offset = from;
    while (offset < chunk.length) {
      if (this.waitForModel && this.slot.hasReady) {
        this.held.unshift(chunk);
        this.heldOffset = offset;
        return false;
      }
      const take = Math.min(this.frameBytes - this.filled, chunk.length - offset);
      chunk.copy(this.slot.writeTarget, this.filled, offset, offset + take);
      this.filled += take;
      offset += take;
      if (this.filled === this.frameBytes) {
        this.filled = 0;
        this.lastFrameAt = this.now();
        this.slot.publish(this.seq++, this.lastFrameAt, this.sourceWidth, this.sourceHeight);
      }
    }
    return true;
  }

  /** Drops a partial frame and held bytes (ffmpeg restarted). */
  reset(): void {
    this.filled = 0;
    this.held.length = 0;
    this.heldOffset = 0;
  }
}
