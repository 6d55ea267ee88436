import sharp from 'sharp';
import type { Picture } from '../inference/picture.js';

/** Turns a picture into JPEG bytes; the service is handed one (sharp in the agent). */
export type EncodeJpeg = (picture: Picture, quality: number) => Promise<Buffer>;

/**
 * A picture as a sharp pipeline of RGB. Planes are joined and their values turned into bytes by
 * libvips, in libuv's thread pool: `linear` applies scale and offset, and the cast to bytes clamps
 * and truncates, so half is added to round as the RGB path does.
 */
export function sharpOf(picture: Picture): sharp.Sharp {
  if (picture.kind === 'rgb') return sharp(picture.data, { raw: { width: picture.width, height: picture.height, channels: picture.channels } });
  const raw = { width: picture.width, height: picture.height, channels: 1 } as const;
  const [red, green, blue] = picture.planes;
  // joinChannel takes typed arrays as the constructor does (their type sets the depth: float here),
  // though its declared type names only Buffer.
  return sharp(red, { raw })
    .joinChannel([green, blue] as unknown as Buffer[], { raw })
    .linear(
      picture.scale,
      picture.offset.map((offset) => offset + 0.5),
    )
    .toColourspace('srgb');
}

/** The picture's RGB bytes, row by row (tests, and whoever needs the pixels rather than a JPEG). */
export async function rgbOf(picture: Picture): Promise<Uint8Array> {
  if (picture.kind === 'rgb') return picture.data;
  return new Uint8Array(await sharpOf(picture).raw({ depth: 'uchar' }).toBuffer());
}

/**
 * sharp encodes in libuv's thread pool, off the main thread. One sample at a time (the service
 * enforces it): the pool is shared with file I/O and the model's own work must not wait on a
 * burst of snapshots.
 */
export const sharpJpeg: EncodeJpeg = (picture, quality) => sharpOf(picture).jpeg({ quality, mozjpeg: false }).toBuffer();
