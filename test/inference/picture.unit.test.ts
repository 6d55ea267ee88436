import { describe, expect, it } from 'vitest';
import { geometryOf } from '../../agent/inference/loaded-model.js';
import { manifestSchema, type ModelManifest } from '../../agent/inference/manifest.js';
import { pictureOfInput } from '../../agent/inference/picture.js';
import { rgbOf, sharpJpeg } from '../../agent/evidence/jpeg-encoder.js';
import sharp from 'sharp';
import { createPreprocessor } from '../../agent/inference/preprocess.js';

const manifest = (input: Record<string, unknown>): ModelManifest =>
  manifestSchema.parse({
    schemaVersion: 1,
    id: 'toy',
    version: '1',
    task: 'detection',
    file: 'toy.onnx',
    input: { name: 'x', layout: 'NCHW', dtype: 'float32', width: 8, height: 8, colorOrder: 'BGR', resize: { mode: 'letterbox' }, ...input },
    labels: ['car'],
    vehicleTypes: { car: 'car' },
    output: { name: 'y', decoder: 'boxes' },
  });

/** An 8x8 frame in the model's colour order, with a distinct value per pixel and channel. */
function frame(): Buffer {
  const data = Buffer.alloc(8 * 8 * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 256;
  return data;
}

describe('the picture a lane holds (for evidence samples)', () => {
  for (const [layout, dtype, normalization] of [
    ['NCHW', 'float32', { mean: [0, 0, 0], std: [1, 1, 1] }],
    ['NCHW', 'float32', { mean: [104, 117, 123], std: [58, 57, 57] }],
    ['NHWC', 'uint8', { mean: [0, 0, 0], std: [1, 1, 1] }],
  ] as const) {
    it(`undoes the preprocessing exactly: ${layout} ${dtype}, mean ${normalization.mean.join('/')}`, async () => {
      const model = manifest({ layout, dtype, normalization });
      const input = dtype === 'uint8' ? new Uint8Array(8 * 8 * 3) : new Float32Array(8 * 8 * 3);
      const source = frame();
      createPreprocessor(model.input)(source, input);
      const picture = pictureOfInput(input, model.input, geometryOf(model), 0, 0, undefined);
      expect([picture.width, picture.height]).toEqual([8, 8]);
      // A float NCHW tensor is copied as planes (sharp turns them into bytes); the rest into RGB rows.
      expect(picture.kind).toBe(layout === 'NCHW' && dtype === 'float32' ? 'planes' : 'rgb');
      const rgb = await rgbOf(picture);
      // BGR in, RGB out.
      for (let p = 0; p < 64; p++) expect([...rgb.subarray(p * 3, p * 3 + 3)]).toEqual([source[p * 3 + 2], source[p * 3 + 1], source[p * 3]]);
    });
  }

  it('leaves the letterbox padding out: a 16x8 camera fills the top 8x4 of an 8x8 input', async () => {
    const model = manifest({});
    const input = new Float32Array(8 * 8 * 3);
    createPreprocessor(model.input)(frame(), input);
    const picture = pictureOfInput(input, model.input, geometryOf(model), 16, 8, undefined);
    expect([picture.width, picture.height, (await rgbOf(picture)).length]).toEqual([8, 4, 8 * 4 * 3]);
  });

  it('a pillarboxed camera (8x16 in an 8x8 input) gives the 4x8 left part it fills, pixel for pixel (rows copied one by one)', async () => {
    const model = manifest({ normalization: { mean: [10, 20, 30], std: [2, 3, 4] } });
    const input = new Float32Array(8 * 8 * 3);
    const source = frame();
    createPreprocessor(model.input)(source, input);
    const picture = pictureOfInput(input, model.input, geometryOf(model), 8, 16, undefined);
    expect([picture.kind, picture.width, picture.height]).toEqual(['planes', 4, 8]);
    const rgb = await rgbOf(picture);
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 4; x++) {
        const p = y * 8 + x;
        expect([...rgb.subarray((y * 4 + x) * 3, (y * 4 + x) * 3 + 3)]).toEqual([source[p * 3 + 2], source[p * 3 + 1], source[p * 3]]);
      }
  });

  it('the JPEG of a planar picture shows its colours (red stays red)', async () => {
    const model = manifest({ width: 16, height: 16 });
    const source = Buffer.alloc(16 * 16 * 3);
    for (let p = 0; p < 256; p++) source.set([20, 40, 220], p * 3); // BGR: a red frame
    const input = new Float32Array(16 * 16 * 3);
    createPreprocessor(model.input)(source, input);
    const jpeg = await sharpJpeg(pictureOfInput(input, model.input, geometryOf(model), 0, 0, undefined), 90);
    const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([16, 16, 3]);
    for (const [channel, expected] of [220, 40, 20].entries()) expect(Math.abs(data[8 * 16 * 3 + 8 * 3 + channel]! - expected)).toBeLessThanOrEqual(3);
  });
});
