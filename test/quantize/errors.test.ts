import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { geometryOf } from '../../agent/inference/loaded-model.js';
import { readManifest } from '../../agent/inference/model-files.js';
import { manifestsDir } from '../../agent/paths.js';
import { readSourceFrames } from '../../agent/quantize/calibration-source.js';
import { DataType, encodeModel, floatTensor, floatValueInfo, makeNode, type ModelProto } from '../../agent/quantize/onnx-model.js';
import { DEFAULT_OPTIONS, quantizeModel } from '../../agent/quantize/quantize.js';
import { chooseRange, Histogram, paramsFor } from '../../agent/quantize/range-search.js';
import { assetPath } from '../support/assets.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-quantize-errors-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const geometry = geometryOf(readManifest(path.join(manifestsDir(), 'yolox-nano.json')));

/** input [1,1,4,4] -> Conv 1x1 -> op -> output: a model small enough to build by hand. */
function tinyModel(op: string): Uint8Array {
  const model: ModelProto = {
    graph: {
      name: 'tiny',
      node: [makeNode('Conv', ['x', 'w', 'b'], ['y'], 'conv'), makeNode(op, ['y'], ['z'], 'odd')],
      initializer: [floatTensor('w', [1, 1, 1, 1], Float32Array.of(2)), floatTensor('b', [1], Float32Array.of(0))],
      input: [{ name: 'x', type: { tensorType: { elemType: DataType.FLOAT } } }],
      output: [floatValueInfo('z')],
      valueInfo: [],
    },
    opsetImport: [{ domain: '', version: 13 }],
    metadataProps: [],
  };
  return encodeModel({ ...model, irVersion: 7 } as ModelProto);
}

describe('quantizer errors carry codes', () => {
  it('a model with an unsupported op: QUANTIZE_UNSUPPORTED_OP naming the op and node', async () => {
    await expect(quantizeModel(tinyModel('Einsum'), [], DEFAULT_OPTIONS)).rejects.toMatchObject({
      code: 'QUANTIZE_UNSUPPORTED_OP',
      message: expect.stringContaining('Einsum (node odd)'),
    });
  });

  it('bytes that are not a model: QUANTIZE_MODEL_INVALID', async () => {
    await expect(quantizeModel(new TextEncoder().encode('not a model at all'), [], DEFAULT_OPTIONS)).rejects.toMatchObject({ code: 'QUANTIZE_MODEL_INVALID' });
  });

  it('a layer name that does not exist: QUANTIZE_UNKNOWN_LAYER naming it', async () => {
    const bytes = fs.readFileSync(assetPath('yolox-nano.onnx'));
    await expect(quantizeModel(bytes, [], { ...DEFAULT_OPTIONS, keepFloat: ['Conv_41', 'Conv_9999'] })).rejects.toMatchObject({
      code: 'QUANTIZE_UNKNOWN_LAYER',
      message: expect.stringContaining('"Conv_9999"'),
    });
  });

  it('an images folder without images: QUANTIZE_NO_FRAMES', async () => {
    const empty = path.join(dir, 'empty');
    fs.mkdirSync(empty);
    fs.writeFileSync(path.join(empty, 'notes.txt'), 'no pictures here');
    await expect(readSourceFrames({ kind: 'images', dir: empty }, geometry, 10)).rejects.toMatchObject({ code: 'QUANTIZE_NO_FRAMES' });
  });

  it('a video whose selection is empty (a 0.5 s clip, odd seconds only): QUANTIZE_NO_FRAMES', async () => {
    await expect(
      readSourceFrames({ kind: 'video', file: assetPath('highway-cctv-320x240.mp4'), fps: 0.5, seconds: 'odd' }, geometry, 10),
    ).rejects.toMatchObject({ code: 'QUANTIZE_NO_FRAMES' });
  });

  it('a video that does not exist: QUANTIZE_SOURCE_FAILED', async () => {
    await expect(readSourceFrames({ kind: 'video', file: path.join(dir, 'missing.mp4'), fps: 1, seconds: 'all' }, geometry, 10)).rejects.toMatchObject({
      code: 'QUANTIZE_SOURCE_FAILED',
    });
  });
});

describe('range search', () => {
  it('keeps zero exact and clips a long thin tail (exponential values: clipped below their maximum)', () => {
    const histogram = new Histogram();
    const values = new Float32Array(200_000);
    for (let i = 0; i < values.length; i++) values[i] = -Math.log((i + 0.5) / values.length); // exponential quantiles, max about 13
    histogram.add(values);
    const choice = chooseRange(histogram, false);
    expect(choice.hi).toBeLessThan(0.9 * histogram.max);
    expect(choice.zeroPoint).toBe(0);
    expect([127, 128]).toContain(paramsFor(-1, 1).zeroPoint); // 127.5 after float32 rounding of the scale
  });

  it('after a SiLU, clipping very negative values costs almost nothing', () => {
    const histogram = new Histogram();
    const values = new Float32Array(10_000);
    for (let i = 0; i < values.length; i++) values[i] = -20 + (((i * 7919) % 1000) / 1000) * 24; // [-20, 4)
    histogram.add(values);
    expect(chooseRange(histogram, true).lo).toBeGreaterThan(chooseRange(histogram, false).lo);
  });
});
