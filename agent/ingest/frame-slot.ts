import type { Roi } from '../config/schema.js';
import type { Frame } from './frame.js';

/**
 * A latest-wins hand-over between one camera's reader and the inference scheduler, over a
 * fixed pool of three frames (being written, ready, being processed): no allocation and no
 * copy per frame. A ready frame that is replaced before anyone took it is counted as dropped.
 */
export class LatestFrameSlot {
  private writing: Frame;
  private ready: Frame | undefined;
  private readonly free: Frame[] = [];
  private onReady: (() => void) | undefined;
  private onTaken: (() => void) | undefined;
  framesIn = 0;
  dropped = 0;

  constructor(
    readonly cameraId: string,
    width: number,
    height: number,
    bytesPerFrame: number,
    roi?: Roi,
  ) {
    const make = (): Frame => ({ cameraId, seq: 0, capturedAt: 0, width, height, sourceWidth: 0, sourceHeight: 0, roi, data: Buffer.alloc(bytesPerFrame) });
    this.writing = make();
    this.free.push(make(), make());
  }

  /** The buffer the reader fills next. */
  get writeTarget(): Buffer {
    return this.writing.data;
  }

  /** The reader finished the write target: it becomes the ready frame. */
  publish(seq: number, capturedAt: number, sourceWidth: number, sourceHeight: number): void {
    const frame = this.writing;
    frame.seq = seq;
    frame.capturedAt = capturedAt;
    frame.sourceWidth = sourceWidth;
    frame.sourceHeight = sourceHeight;
    this.framesIn++;
    if (this.ready !== undefined) {
      this.dropped++;
      this.writing = this.ready;
    } else {
      // A free frame always exists here: at most one is ready and one is being processed.
      this.writing = this.free.pop()!;
    }
    this.ready = frame;
    this.onReady?.();
  }

  get hasReady(): boolean {
    return this.ready !== undefined;
  }

  /** Takes the ready frame; the caller must release() it when done. */
  take(): Frame | undefined {
    const frame = this.ready;
    this.ready = undefined;
    if (frame) this.onTaken?.();
    return frame;
  }

  /** One listener: the reader of a source that waits for the model (backpressure). */
  setTakenListener(listener: (() => void) | undefined): void {
    this.onTaken = listener;
  }

  release(frame: Frame): void {
    this.free.push(frame);
  }

  /** One listener: the scheduler that drains all slots. */
  setReadyListener(listener: (() => void) | undefined): void {
    this.onReady = listener;
  }
}
