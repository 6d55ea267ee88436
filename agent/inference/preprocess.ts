import type { ModelManifest } from './manifest.js';

/**
 * Converts one frame (HWC, 8-bit, already in the model's size and colour order, as ffmpeg
 * delivers it) into the model's input tensor data, in place. Runs once per frame: a single
 * pass, no allocation.
 */
export type Preprocessor = (source: Buffer, target: Float32Array | Uint8Array) => void;

export function createPreprocessor(input: ModelManifest['input']): Preprocessor {
  const plane = input.width * input.height;
  const [m0, m1, m2] = input.normalization.mean;
  const [s0, s1, s2] = input.normalization.std.map((std) => 1 / std) as [number, number, number];
  if (input.dtype === 'uint8') {
    // The model takes raw pixels: NHWC is the frame itself, NCHW a transpose.
    if (input.layout === 'NHWC') return (source, target) => (target as Uint8Array).set(source.subarray(0, plane * 3));
    return (source, target) => {
      for (let i = 0, p = 0; i < plane; i++, p += 3) {
        target[i] = source[p]!;
        target[plane + i] = source[p + 1]!;
        target[2 * plane + i] = source[p + 2]!;
      }
    };
  }
  if (input.layout === 'NCHW') {
    return (source, target) => {
      const g = plane;
      const b = 2 * plane;
      for (let i = 0, p = 0; i < plane; i++, p += 3) {
        target[i] = (source[p]! - m0) * s0;
        target[g + i] = (source[p + 1]! - m1) * s1;
        target[b + i] = (source[p + 2]! - m2) * s2;
      }
    };
  }
  return (source, target) => {
    for (let p = 0; p < plane * 3; p += 3) {
      target[p] = (source[p]! - m0) * s0;
      target[p + 1] = (source[p + 1]! - m1) * s1;
      target[p + 2] = (source[p + 2]! - m2) * s2;
    }
  };
}
