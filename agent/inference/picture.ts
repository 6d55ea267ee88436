import type { Roi } from '../config/schema.js';
import { placementInto, type FrameGeometry, type Placement } from '../ingest/frame-geometry.js';
import type { ModelManifest } from './manifest.js';

/** A frame as a person sees it: RGB, 8 bits, row-major (what sharp takes as raw input). */
export interface RgbPicture {
  kind: 'rgb';
  width: number;
  height: number;
  channels: 3;
  data: Uint8Array;
}

/**
 * A float tensor's planes copied as they are (R, G, B), with what turns a value back into a
 * byte: round(value * scale + offset), clamped to 0-255. The copy is a memcpy per plane; the
 * conversion to RGB bytes is left to the encoder, off the main thread (sharp).
 */
export interface PlanarPicture {
  kind: 'planes';
  width: number;
  height: number;
  planes: [Float32Array, Float32Array, Float32Array];
  scale: [number, number, number];
  offset: [number, number, number];
}

export type Picture = RgbPicture | PlanarPicture;

/**
 * The picture a lane's input tensor holds, as the model saw it, cropped to the part the camera
 * filled (the letterbox padding left out), in R, G, B order: a float NCHW tensor's planes copied
 * as they are (the encoder undoes the normalisation), any other tensor turned into RGB rows here.
 * Made only when asked (an evidence sample), never per frame.
 */
export function pictureOfInput(
  input: Float32Array | Uint8Array,
  manifest: ModelManifest['input'],
  geometry: FrameGeometry,
  sourceWidth: number,
  sourceHeight: number,
  roi: Roi | undefined,
): Picture {
  const { width, height, layout, colorOrder, normalization } = manifest;
  const placement: Placement = { scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 0 };
  let x0 = 0;
  let y0 = 0;
  let w = width;
  let h = height;
  if (sourceWidth > 0 && sourceHeight > 0) {
    const spanX = sourceWidth * (roi?.width ?? 1);
    const spanY = sourceHeight * (roi?.height ?? 1);
    placementInto(placement, geometry, spanX, spanY);
    x0 = Math.max(0, Math.round(placement.offsetX));
    y0 = Math.max(0, Math.round(placement.offsetY));
    w = Math.min(width - x0, Math.round(spanX * placement.scaleX));
    h = Math.min(height - y0, Math.round(spanY * placement.scaleY));
  }
  // Output channel c (R, G, B) comes from the tensor's channel in the model's colour order.
  const from = colorOrder === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  const plane = width * height;
  if (input instanceof Float32Array && layout === 'NCHW') {
    // The common case, and the cheap one: a JS loop over every value costs 1 ms warm and 8-13 ms
    // cold, and a sample is rare enough that V8 may have flushed its code (bench/evidence.ts).
    const copyPlane = (channel: number): Float32Array => {
      const start = channel * plane + y0 * width;
      if (x0 === 0 && w === width) return input.slice(start, start + w * h);
      const copy = new Float32Array(w * h);
      for (let y = 0; y < h; y++) copy.set(input.subarray(start + y * width + x0, start + y * width + x0 + w), y * w);
      return copy;
    };
    const scale = from.map((channel) => normalization.std[channel]!) as [number, number, number];
    const offset = from.map((channel) => normalization.mean[channel]!) as [number, number, number];
    return { kind: 'planes', width: w, height: h, planes: [copyPlane(from[0]!), copyPlane(from[1]!), copyPlane(from[2]!)], scale, offset };
  }
  const data = new Uint8Array(w * h * 3);
  // The index arithmetic is hoisted out of the inner loop and the layout decided once per row.
  const step = layout === 'NCHW' ? 1 : 3;
  for (let c = 0; c < 3; c++) {
    const source = from[c]!;
    const mean = normalization.mean[source]!;
    const std = normalization.std[source]!;
    for (let y = 0; y < h; y++) {
      const first = (y + y0) * width + x0;
      let at = layout === 'NCHW' ? source * plane + first : first * 3 + source;
      let out = y * w * 3 + c;
      for (let x = 0; x < w; x++) {
        const pixel = input[at]! * std + mean;
        // Math.round for the clamped, non-negative value.
        data[out] = pixel <= 0 ? 0 : pixel >= 255 ? 255 : (pixel + 0.5) | 0;
        at += step;
        out += 3;
      }
    }
  }
  return { kind: 'rgb', width: w, height: h, channels: 3, data };
}
