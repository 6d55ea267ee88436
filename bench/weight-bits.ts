/**
 * onnxruntime's advice for u8s8 models on x86 CPUs without VNNI is reduce_range: 7-bit weights,
 * so vpmaddubsw's 16-bit sum of two u8 x s8 products (255 x 127 x 2 = 64,770) cannot saturate
 * (255 x 63 x 2 = 32,130 fits). This measures what it does to the derived model on this CPU:
 * the default int8 model made with 8-bit and 7-bit weights from the same calibration frames,
 * each with its own calibrated score threshold, and their agreement with float on held-out
 * frames (the same split as test/quantize/quantize.test.ts).
 *
 * Run: node scripts/run-ts.mjs bench/weight-bits.ts
 */
import path from 'node:path';
import { describeCpuInt8 } from '../agent/inference/cpu-features.js';
import { geometryOf, LoadedModel } from '../agent/inference/loaded-model.js';
import { resolveModel } from '../agent/inference/model-files.js';
import { manifestsDir } from '../agent/paths.js';
import { readSourceFrames } from '../agent/quantize/calibration-source.js';
import { YOLOX_NANO_KEEP_FLOAT_SWEPT } from '../agent/quantize/derive-default.js';
import { EVALUATION_SETTINGS, loadModelBytes, measureAgreement, type Agreement } from '../agent/quantize/evaluate.js';
import { DEFAULT_OPTIONS, modelInputs, quantizeModel } from '../agent/quantize/quantize.js';
import { calibrateScoreThreshold, detectionThreshold } from '../agent/quantize/threshold.js';
import { assetPath } from '../test/support/assets.js';
import fs from 'node:fs';

const floatModel = resolveModel(path.join(manifestsDir(), 'yolox-nano.json'), path.dirname(assetPath('yolox-nano.onnx')));
const geometry = geometryOf(floatModel.manifest);
const clip = assetPath('highway-cctv-320x240.mp4');
console.log(`cpu: ${describeCpuInt8()}`);
const calibration = await readSourceFrames({ kind: 'video', file: clip, fps: 4, seconds: 'even' }, geometry, 60);
const heldOut = [
  ...(await readSourceFrames({ kind: 'video', file: clip, fps: 3, seconds: 'odd' }, geometry, 1000)).frames,
  ...(await readSourceFrames({ kind: 'video', file: assetPath('overhead-road-768x432.mp4'), fps: 2, seconds: 'all' }, geometry, 1000)).frames,
];
const float = await LoadedModel.load(floatModel, EVALUATION_SETTINGS);
const floatBytes = fs.readFileSync(floatModel.modelPath);
console.log(
  '| weights | calibrated threshold | calibration detections int8 / float | held-out precision | held-out recall | frames |\n|---|---|---|---|---|---|',
);
for (const weightBits of [8, 7] as const) {
  const result = await quantizeModel(floatBytes, modelInputs(calibration.frames, floatModel.manifest), {
    ...DEFAULT_OPTIONS,
    keepFloat: YOLOX_NANO_KEEP_FLOAT_SWEPT,
    weightBits,
  });
  const atFloat = await loadModelBytes(floatModel, result.bytes, `int${weightBits}`);
  const threshold = (await calibrateScoreThreshold(float, atFloat, calibration.frames, detectionThreshold(floatModel.manifest)))!;
  await atFloat.release();
  const int8 = await loadModelBytes(floatModel, result.bytes, `int${weightBits}`, { ...EVALUATION_SETTINGS, scoreThreshold: threshold.int8Threshold });
  const agreement: Agreement = await measureAgreement(float, int8, heldOut);
  await int8.release();
  console.log(
    `| ${weightBits}-bit | ${threshold.int8Threshold} | ${threshold.int8DetectionsAtInt8Threshold} / ${threshold.floatDetections} | ${agreement.precision.toFixed(3)} | ${agreement.recall.toFixed(3)} | ${agreement.frames} |`,
  );
}
await float.release();
