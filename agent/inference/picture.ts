import type { Roi } from '../config/schema.js';
import { placementInto, type FrameGeometry, type Placement } from '../ingest/frame-geometry.js';
import type { ModelManifest } from './manifest.js';

/** A frame as a person sees it: RGB, 8 bits, row-major (what sharp takes as raw input). */
export interface Picture {
  width: number;
  height: number;
  channels: 3;
  data: Uint8Array;
}

/**
 * The picture a lane's input tensor holds, as the model saw it, cropped to the part the camera
 * filled (the letterbox padding left out): the tensor's normalisation undone, its layout and
 * colour order turned into RGB rows. Made only when asked (an evidence sample), never per frame.
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
  const data = new Uint8Array(w * h * 3);
  const plane = width * height;
  // Output channel c (R, G, B) comes from the tensor's channel in the model's colour order.
  const from = colorOrder === 'BGR' ? [2, 1, 0] : [0, 1, 2];
  // The index arithmetic is hoisted out of the inner loop and the layout decided once per row:
  // this runs on the main thread while the frame path waits (bench/evidence.ts).
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
  return { width: w, height: h, channels: 3, data };
}
