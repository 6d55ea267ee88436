import { describe, expect, it } from 'vitest';
import { createClassificationDecoder } from '../../agent/inference/decode-classification.js';
import { createDetectionDecoder } from '../../agent/inference/decode-detection.js';
import { manifestSchema, type ClassificationManifest, type DetectionManifest } from '../../agent/inference/manifest.js';
import { geometryOf } from '../../agent/inference/loaded-model.js';

const labels = ['person', 'car', 'bus'];
const detector = manifestSchema.parse({
  schemaVersion: 1,
  id: 'toy',
  version: '1',
  task: 'detection',
  file: 'toy.onnx',
  input: { name: 'images', layout: 'NCHW', dtype: 'float32', width: 416, height: 416, colorOrder: 'BGR', resize: { mode: 'letterbox' } },
  labels,
  output: { name: 'output', decoder: 'boxes', scoreThreshold: 0.3, nmsIouThreshold: 0.45 },
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

  it('per-class NMS (nms: per-class): scores are objectness x class; non-vehicles, low scores and overlaps of one class are dropped', () => {
    const perClass = manifestSchema.parse({ ...detector, output: { ...detector.output, nms: 'per-class' } }) as DetectionManifest;
    const vehicles = createDetectionDecoder(perClass, labels, geometryOf(perClass), 0.3)(
      rows(
        [100, 100, 50, 50, 0.9, [0.1, 0.8, 0.1]], // car 0.72
        [102, 101, 50, 50, 0.8, [0.1, 0.8, 0.1]], // overlapping car 0.64: suppressed
        [104, 102, 50, 50, 0.9, [0.1, 0.1, 0.7]], // bus on the same spot: another class, kept
        [300, 200, 40, 40, 0.9, [0.9, 0.1, 0.0]], // person: not a vehicle
        [200, 200, 40, 40, 0.5, [0.1, 0.5, 0.1]], // car 0.25: under the threshold
      ),
      416,
      416,
      undefined,
    );
    expect(vehicles.map((vehicle) => [vehicle.type, vehicle.score])).toEqual([
      ['car', 0.72],
      ['bus', 0.63],
    ]);
  });
});

describe('one vehicle, one detection: class-agnostic suppression (the default for detectors)', () => {
  const vehicleLabels = ['person', 'car', 'truck', 'bus'];
  const manifest = manifestSchema.parse({
    ...detector,
    labels: vehicleLabels,
    vehicleTypes: { car: 'car', truck: 'truck', bus: 'bus' },
  }) as DetectionManifest;
  const decode = createDetectionDecoder(manifest, vehicleLabels, geometryOf(manifest), 0.3);

  it('is the default', () => {
    expect(manifest.output.nms).toBe('class-agnostic');
  });

  it('overlapping car and truck boxes of one vehicle give one detection carrying both scores', () => {
    // Two grid rows on one vehicle (IoU about 0.9): one says car 0.72, the other truck 0.56.
    const vehicles = decode(rows([100, 100, 60, 40, 0.9, [0, 0.8, 0.15, 0]], [102, 101, 60, 40, 0.8, [0, 0.2, 0.7, 0]]), 416, 416, undefined);
    expect(vehicles).toHaveLength(1);
    expect(vehicles[0]).toMatchObject({ type: 'car', label: 'car', score: 0.72, runnerUp: { type: 'truck', label: 'truck', score: 0.56 } });
  });

  it("the runner-up also comes from the box's own row when no other box overlaps it", () => {
    const [vehicle] = decode(rows([100, 100, 60, 40, 0.9, [0, 0.6, 0.35, 0.05]]), 416, 416, undefined);
    expect(vehicle).toMatchObject({ type: 'car', score: 0.54, runnerUp: { type: 'truck', score: 0.315 } });
    // Under 0.05 it is noise and left out.
    const [sure] = decode(rows([100, 100, 60, 40, 0.9, [0, 0.95, 0.02, 0.01]]), 416, 416, undefined);
    expect(sure!.runnerUp).toBeUndefined();
  });

  it('two real vehicles side by side (low IoU) stay two, whatever their types', () => {
    const vehicles = decode(
      rows(
        [100, 100, 60, 40, 0.9, [0, 0.8, 0.1, 0]], // car
        [150, 102, 60, 40, 0.9, [0, 0.1, 0.8, 0]], // truck beside it: IoU about 0.1
        [210, 100, 60, 40, 0.9, [0, 0.8, 0.1, 0]], // another car
      ),
      416,
      416,
      undefined,
    );
    expect(vehicles.map((vehicle) => vehicle.type).sort()).toEqual(['car', 'car', 'truck']);
  });
});

describe('classification decoding', () => {
  const manifest = (scores: 'probabilities' | 'logits'): ClassificationManifest =>
    manifestSchema.parse({
      schemaVersion: 1,
      id: 'toy',
      version: '1',
      task: 'classification',
      file: 'toy.onnx',
      input: { name: 'x', layout: 'NCHW', dtype: 'float32', width: 8, height: 8, colorOrder: 'RGB', resize: { mode: 'stretch' } },
      labels: ['cat', 'minivan', 'dog', 'tram'],
      output: { name: 'y', scores, topK: 2 },
      vehicleTypes: { minivan: 'van' },
    }) as ClassificationManifest;

  it('top-k of probabilities, with vehicle types where mapped', () => {
    const top = createClassificationDecoder(manifest('probabilities'), ['cat', 'minivan', 'dog', 'tram'])(new Float32Array([0.1, 0.6, 0.25, 0.05]));
    expect(top).toEqual([
      { label: 'minivan', type: 'van', score: 0.6 },
      { label: 'dog', type: null, score: 0.25 },
    ]);
  });

  it('logits get a softmax', () => {
    const top = createClassificationDecoder(manifest('logits'), ['cat', 'minivan', 'dog', 'tram'])(new Float32Array([0, Math.log(3), 0, 0]));
    expect(top[0]).toEqual({ label: 'minivan', type: 'van', score: 0.5 });
  });
});
