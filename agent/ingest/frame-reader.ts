import type { LatestFrameSlot } from './frame-slot.js';

/**
 * Cuts ffmpeg's raw stdout into exact frames, copying chunk bytes straight into the slot's
 * write buffer. A frame is published only when complete; a partial frame at the end of a
 * run is discarded by reset().
 */
export class FrameReader {
  private filled = 0;
  private seq: number;
  sourceWidth = 0;
  sourceHeight = 0;
  lastFrameAt = 0;

  constructor(private readonly slot: LatestFrameSlot, private readonly frameBytes: number, firstSeq = 0, private readonly now: () => number = Date.now) {
    this.seq = firstSeq;
  }

  get nextSeq(): number {
    return this.seq;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
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
  }

  /** Drops a partial frame (ffmpeg restarted mid-frame). */
  reset(): void {
    this.filled = 0;
  }
}
