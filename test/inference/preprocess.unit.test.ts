import { describe, expect, it } from 'vitest';
import { createPreprocessor } from '../../agent/inference/preprocess.js';
import { manifestSchema, type ModelManifest } from '../../agent/inference/manifest.js';

function inputOf(overrides: Record<string, unknown>): ModelManifest['input'] {
  return manifestSchema.parse({
    schemaVersion: 1,
    id: 'p',
    version: '1',
    task: 'classification',
    file: 'p.onnx',
    input: { name: 'x', layout: 'NCHW', dtype: 'float32', width: 8, height: 8, colorOrder: 'RGB', resize: { mode: 'stretch' }, ...overrides },
    labels: ['a'],
    output: { name: 'y', scores: 'probabilities' },
    vehicleTypes: {},
  }).input;
}

/** The definition, one pixel at a time. */
function reference(input: ModelManifest['input'], source: Uint8Array): number[] {
  const plane = input.width * input.height;
  const out = new Array<number>(plane * 3);
  for (let pixel = 0; pixel < plane; pixel++) {
    for (let c = 0; c < 3; c++) {
      const raw = source[pixel * 3 + c]!;
      const value = input.dtype === 'uint8' ? raw : Math.fround((raw - input.normalization.mean[c]!) / input.normalization.std[c]!);
      out[input.layout === 'NCHW' ? c * plane + pixel : pixel * 3 + c] = value;
    }
  }
  return out;
}

const frame = (bytes: number, offset = 0): Buffer => {
  const backing = Buffer.alloc(bytes + offset);
  for (let i = 0; i < backing.length; i++) backing[i] = (i * 37 + 11) & 255;
  return backing.subarray(offset);
};

describe('preprocessing HWC uint8 into the model input', () => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['NCHW float, mean/std', { normalization: { mean: [123.675, 116.28, 103.53], std: [58.395, 57.12, 57.375] } }],
    ['NCHW float, raw pixels', {}],
    ['NHWC float, scale', { layout: 'NHWC', normalization: { mean: [0, 0, 0], std: [255, 255, 255] } }],
    ['NCHW uint8', { dtype: 'uint8' }],
    ['NHWC uint8', { dtype: 'uint8', layout: 'NHWC' }],
    ['NCHW float, a pixel count not a multiple of 4', { width: 9, height: 9 }],
  ];
  for (const [name, overrides] of cases) {
    it(name, () => {
      const input = inputOf(overrides);
      const bytes = input.width * input.height * 3;
      const preprocess = createPreprocessor(input);
      for (const offset of [0, 1, 4]) {
        const source = frame(bytes, offset);
        const target = input.dtype === 'uint8' ? new Uint8Array(bytes) : new Float32Array(bytes);
        preprocess(source, target);
        preprocess(source, target); // the second call reads through the cached word view
        expect(Array.from(target), `byte offset ${offset}`).toEqual(reference(input, source));
      }
    });
  }

  it('a pool of frame buffers, each seen again, converts each one correctly', () => {
    const input = inputOf({ width: 16, height: 16 });
    const preprocess = createPreprocessor(input);
    const pool = [frame(768), frame(768, 4), frame(768)];
    pool[2]!.reverse();
    const target = new Float32Array(768);
    for (let round = 0; round < 2; round++) {
      for (const source of pool) {
        preprocess(source, target);
        expect(Array.from(target)).toEqual(reference(input, source));
      }
    }
  });
});
