import { describe, expect, it } from 'vitest';
import { createClassificationDecoder } from '../../agent/inference/decode-classification.js';
import { createDetectionDecoder } from '../../agent/inference/decode-detection.js';
import { manifestSchema, type ClassificationManifest, type DetectionManifest } from '../../agent/inference/manifest.js';
import { geometryOf } from '../../agent/inference/loaded-model.js';

const labels = ['person', 'car', 'bus'];
const detector = manifestSchema.parse({
  schemaVersion: 1, id: 'toy', version: '1', task: 'detection', file: 'toy.onnx',
  input: { name: 'images', layout: 'NCHW', dtype: 'float32', width: 416, height: 416, colorOrder: 'BGR', resize: { mode: 'letterbox' } },
  labels, output: { name: 'output', decoder: 'boxes', scoreThreshold: 0.3, nmsIouThreshold: 0.45 },
  vehicleTypes: { car: 'car', bus: 'bus' },
}) as DetectionManifest;

/** One [cx, cy, w, h, objectness, scores...] row per box, in model-input pixels. */
function rows(...boxes: Array<[number, number, number, number, number, number[]]>): Float32Array {
  return new Float32Array(boxes.flatMap(([cx, cy, w, h, objectness, scores]) => [cx, cy, w, h, objectness, ...scores]));
}

describe('detection decoding', () => {
  const decode = createDetectionDecoder(detector, labels, geometryOf(detector), 0.3);

  it('undoes the top-left letterbox: a 320x240 source fills 416x312 of the input', () => {
    // A box covering the whole picture area (0..416 x 0..312) is the whole source picture.
    const [car] = decode(rows([208, 156, 416, 312, 0.9, [0, 1, 0]]), 320, 240, undefined);
    expect(car).toMatchObject({ type: 'car', label: 'car', score: 0.9 });
    expect(car!.box).toEqual([0, 0, 1, 1]);
  });

  it('maps boxes through a region of interest back to the whole picture', () => {
    // ROI: the top-right quarter of a 320x240 picture, i.e. 160x120, letterboxed to 416x312.
    const [car] = decode(rows([208, 156, 416, 312, 0.9, [0, 1, 0]]), 320, 240, { x: 0.5, y: 0, width: 0.5, height: 0.5 });
    expect(car!.box).toEqual([0.5, 0, 0.5, 0.5]);
  });

  it('scores are objectness x class; non-vehicles, low scores and overlaps of one class are dropped', () => {
    const vehicles = decode(rows(
      [100, 100, 50, 50, 0.9, [0.1, 0.8, 0.1]], // car 0.72
      [102, 101, 50, 50, 0.8, [0.1, 0.8, 0.1]], // overlapping car 0.64: suppressed
      [104, 102, 50, 50, 0.9, [0.1, 0.1, 0.7]], // bus on the same spot: another class, kept
      [300, 200, 40, 40, 0.9, [0.9, 0.1, 0.0]], // person: not a vehicle
      [200, 200, 40, 40, 0.5, [0.1, 0.5, 0.1]], // car 0.25: under the threshold
    ), 416, 416, undefined);
    expect(vehicles.map((vehicle) => [vehicle.type, vehicle.score])).toEqual([['car', 0.72], ['bus', 0.63]]);
  });
});

describe('classification decoding', () => {
  const manifest = (scores: 'probabilities' | 'logits'): ClassificationManifest => manifestSchema.parse({
    schemaVersion: 1, id: 'toy', version: '1', task: 'classification', file: 'toy.onnx',
    input: { name: 'x', layout: 'NCHW', dtype: 'float32', width: 8, height: 8, colorOrder: 'RGB', resize: { mode: 'stretch' } },
    labels: ['cat', 'minivan', 'dog', 'tram'], output: { name: 'y', scores, topK: 2 }, vehicleTypes: { minivan: 'van' },
  }) as ClassificationManifest;

  it('top-k of probabilities, with vehicle types where mapped', () => {
    const top = createClassificationDecoder(manifest('probabilities'), ['cat', 'minivan', 'dog', 'tram'])(new Float32Array([0.1, 0.6, 0.25, 0.05]));
    expect(top).toEqual([{ label: 'minivan', type: 'van', score: 0.6 }, { label: 'dog', type: null, score: 0.25 }]);
  });

  it('logits get a softmax', () => {
    const top = createClassificationDecoder(manifest('logits'), ['cat', 'minivan', 'dog', 'tram'])(new Float32Array([0, Math.log(3), 0, 0]));
    expect(top[0]).toEqual({ label: 'minivan', type: 'van', score: 0.5 });
  });
});
