import os from 'node:os';
import type { ModelManifest } from './manifest.js';

/**
 * Converts one frame (HWC, 8-bit, already in the model's size and colour order, as ffmpeg
 * delivers it) into the model's input tensor data, in place. Runs once per frame: a single
 * pass, no allocation once each frame buffer of the pool has been seen.
 */
export type Preprocessor = (source: Buffer, target: Float32Array | Uint8Array) => void;

/** value → normalised value, one table per channel: (v - mean) / std costs a lookup. */
function normalisationTables(input: ModelManifest['input']): [Float32Array, Float32Array, Float32Array] {
  const tables = [0, 1, 2].map((channel) => {
    const mean = input.normalization.mean[channel]!;
    const std = input.normalization.std[channel]!;
    const table = new Float32Array(256);
    for (let value = 0; value < 256; value++) table[value] = (value - mean) / std;
    return table;
  });
  return tables as [Float32Array, Float32Array, Float32Array];
}

/**
 * The same bytes seen as 32-bit words, cached per frame buffer (the reader's pool is fixed):
 * reading four bytes at a time and splitting them in registers is about 2.5× faster than one
 * typed-array load per byte (bench/preprocess.ts).
 */
function wordViews(): (source: Buffer) => Uint32Array | undefined {
  const views = new WeakMap<ArrayBufferLike, Uint32Array>();
  return (source) => {
    if (source.byteOffset % 4 !== 0 || source.length % 12 !== 0) return undefined;
    let view = views.get(source.buffer);
    if (view === undefined || view.byteOffset !== source.byteOffset || view.length !== source.length / 4) {
      view = new Uint32Array(source.buffer, source.byteOffset, source.length / 4);
      views.set(source.buffer, view);
    }
    return view;
  };
}

export function createPreprocessor(input: ModelManifest['input']): Preprocessor {
  const plane = input.width * input.height;
  const bytes = plane * 3;
  const g = plane;
  const b = 2 * plane;
  // Splitting words into bytes assumes little-endian order (x86, ARM as Linux runs them).
  const words = os.endianness() === 'LE' && plane % 4 === 0 ? wordViews() : () => undefined;
  if (input.dtype === 'uint8') {
    // The model takes raw pixels: NHWC is the frame itself, NCHW a transpose.
    if (input.layout === 'NHWC') return (source, target) => (target as Uint8Array).set(source.subarray(0, bytes));
    return (source, target) => {
      for (let i = 0, p = 0; i < plane; i++, p += 3) {
        target[i] = source[p]!;
        target[g + i] = source[p + 1]!;
        target[b + i] = source[p + 2]!;
      }
    };
  }
  const [t0, t1, t2] = normalisationTables(input);
  if (input.layout === 'NHWC') {
    return (source, target) => {
      for (let p = 0; p < bytes; p += 3) {
        target[p] = t0[source[p]!]!;
        target[p + 1] = t1[source[p + 1]!]!;
        target[p + 2] = t2[source[p + 2]!]!;
      }
    };
  }
  return (source, target) => {
    const w = words(source.length === bytes ? source : source.subarray(0, bytes));
    if (w === undefined) {
      for (let i = 0, p = 0; i < plane; i++, p += 3) {
        target[i] = t0[source[p]!]!;
        target[g + i] = t1[source[p + 1]!]!;
        target[b + i] = t2[source[p + 2]!]!;
      }
      return;
    }
    // Four pixels (12 bytes) are three words: c0 c1 c2 c0 | c1 c2 c0 c1 | c2 c0 c1 c2.
    for (let i = 0, q = 0; i < plane; i += 4, q += 3) {
      const w0 = w[q]!;
      const w1 = w[q + 1]!;
      const w2 = w[q + 2]!;
      target[i] = t0[w0 & 255]!;
      target[g + i] = t1[(w0 >>> 8) & 255]!;
      target[b + i] = t2[(w0 >>> 16) & 255]!;
      target[i + 1] = t0[w0 >>> 24]!;
      target[g + i + 1] = t1[w1 & 255]!;
      target[b + i + 1] = t2[(w1 >>> 8) & 255]!;
      target[i + 2] = t0[(w1 >>> 16) & 255]!;
      target[g + i + 2] = t1[w1 >>> 24]!;
      target[b + i + 2] = t2[w2 & 255]!;
      target[i + 3] = t0[(w2 >>> 8) & 255]!;
      target[g + i + 3] = t1[(w2 >>> 16) & 255]!;
      target[b + i + 3] = t2[w2 >>> 24]!;
    }
  };
}
