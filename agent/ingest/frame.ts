import type { Roi } from '../config/schema.js';

/**
 * One decoded frame at the model's input size. Frames and their buffers are pooled and
 * reused: a consumer copies what it wants to keep before it releases the frame.
 */
export interface Frame {
  cameraId: string;
  /** Per camera, increasing across ffmpeg restarts. */
  seq: number;
  /** Wall-clock ms when the last byte of the frame arrived. */
  capturedAt: number;
  width: number;
  height: number;
  /** Source picture size when known (for mapping boxes back), else 0. */
  sourceWidth: number;
  sourceHeight: number;
  /** The camera's region of interest (fractions of the source picture), when it has one. */
  readonly roi: Roi | undefined;
  readonly data: Buffer;
}
