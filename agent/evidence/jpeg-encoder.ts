import sharp from 'sharp';
import type { Picture } from '../inference/picture.js';

/** Turns a picture into JPEG bytes; the service is handed one (sharp in the agent). */
export type EncodeJpeg = (picture: Picture, quality: number) => Promise<Buffer>;

/**
 * sharp encodes in libuv's thread pool, off the main thread. One sample at a time (the service
 * enforces it): the pool is shared with file I/O and the model's own work must not wait on a
 * burst of snapshots.
 */
export const sharpJpeg: EncodeJpeg = (picture, quality) =>
  sharp(picture.data, { raw: { width: picture.width, height: picture.height, channels: picture.channels } })
    .jpeg({ quality, mozjpeg: false })
    .toBuffer();
