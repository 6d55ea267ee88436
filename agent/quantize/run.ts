import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AgentError, errorMessage } from '../errors.js';
import { geometryOf, LoadedModel } from '../inference/loaded-model.js';
import type { ResolvedModel } from '../inference/model-files.js';
import { describeSource, readSourceFrames, type CalibrationSource } from './calibration-source.js';
import { agreementOf, EVALUATION_SETTINGS, loadModelBytes, measureAgreement, measureSpeed, type Agreement, type SpeedRound } from './evaluate.js';
import { checkLayerNames } from './graph.js';
import { modelInputs, prepareModel, quantizeModel, type QuantizeOptions, type QuantizeResult } from './quantize.js';
import { formatReport, makeReport, type QuantizeReport } from './report.js';
import { sensitivitySweep, type Sensitivity } from './sensitivity.js';
import { calibrateScoreThreshold, detectionThreshold, type ThresholdCalibration } from './threshold.js';

export interface QuantizeJob {
  /** The float model with its manifest (input geometry, preprocessing, decoder for the agreement). */
  floatModel: ResolvedModel;
  output: string;
  calibration: CalibrationSource;
  frames: number;
  options: QuantizeOptions;
  /** Held-out sources for the agreement check. */
  evaluate: CalibrationSource[];
  speed: { rounds: number; seconds: number } | undefined;
  /** Keep this many of the most sensitive convs float, found by the sweep (0: no sweep). */
  sweep: number;
  report: string | undefined;
}

export interface QuantizeJobResult {
  /** Detectors: the calibrated int8 score threshold. */
  threshold: ThresholdCalibration | undefined;
  report: QuantizeReport;
  text: string;
  result: QuantizeResult;
}

function readModel(file: string): Uint8Array {
  try {
    return fs.readFileSync(file);
  } catch (error) {
    throw new AgentError('QUANTIZE_MODEL_INVALID', `model ${file} cannot be read: ${errorMessage(error)}`, { cause: error });
  }
}

/** Writes through a temporary name, so a crash never leaves a half-written model under the real one. */
export function writeAtomically(file: string, bytes: Uint8Array | string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const part = `${file}.part`;
  fs.writeFileSync(part, bytes);
  fs.renameSync(part, file);
}

export async function runQuantizeJob(job: QuantizeJob, progress: (line: string) => void = () => undefined): Promise<QuantizeJobResult> {
  const floatBytes = readModel(job.floatModel.modelPath);
  const prepared = prepareModel(floatBytes, job.floatModel.modelPath);
  // Names are checked before the slow steps, so a typo fails in a second, not after calibration.
  checkLayerNames(prepared.index, job.options.keepFloat);
  const geometry = geometryOf(job.floatModel.manifest);
  const calibration = await readSourceFrames(job.calibration, geometry, job.frames);
  progress(`calibration: ${calibration.frames.length} frames of ${describeSource(job.calibration)}`);
  const inputs = modelInputs(calibration.frames, job.floatModel.manifest);

  let options = job.options;
  let sensitivity: Sensitivity[] | undefined;
  if (job.sweep > 0) {
    // A handful of frames is enough to rank the layers.
    sensitivity = await sensitivitySweep(prepared, options, inputs.slice(0, 4));
    const worst = sensitivity.slice(0, job.sweep).map((entry) => entry.layer);
    options = { ...options, keepFloat: [...new Set([...options.keepFloat, ...worst])] };
    progress(`sensitivity sweep: keeping ${worst.join(', ')} float`);
  }
  const result = await quantizeModel(floatBytes, inputs, options, job.floatModel.modelPath);
  writeAtomically(job.output, result.bytes);
  const sha256 = createHash('sha256').update(result.bytes).digest('hex');
  progress(`wrote ${job.output} (${result.bytes.length} bytes)`);

  const agreement: Array<{ source: string } & Agreement> = [];
  // The int8 score threshold that matches float's detection count on the calibration frames.
  const floatForThreshold = await LoadedModel.load({ ...job.floatModel, manifest: { ...job.floatModel.manifest, sha256: undefined } }, EVALUATION_SETTINGS);
  const int8ForThreshold = await loadModelBytes(job.floatModel, result.bytes, `${job.floatModel.manifest.id}-int8`);
  const threshold = await calibrateScoreThreshold(floatForThreshold, int8ForThreshold, calibration.frames, detectionThreshold(job.floatModel.manifest)).finally(
    async () => {
      await floatForThreshold.release();
      await int8ForThreshold.release();
    },
  );
  if (threshold) {
    progress(
      `score threshold: ${threshold.int8Threshold} for the int8 model (float ${threshold.floatThreshold}): ${threshold.int8DetectionsAtInt8Threshold} detections on the calibration frames against float's ${threshold.floatDetections} (${threshold.int8DetectionsAtFloatThreshold} at ${threshold.floatThreshold}); put it in the int8 model's manifest (output.scoreThreshold)`,
    );
  }
  if (job.evaluate.length > 0) {
    const float = await LoadedModel.load({ ...job.floatModel, manifest: { ...job.floatModel.manifest, sha256: undefined } }, EVALUATION_SETTINGS);
    const int8 = await loadModelBytes(
      job.floatModel,
      result.bytes,
      `${job.floatModel.manifest.id}-int8`,
      threshold ? { ...EVALUATION_SETTINGS, scoreThreshold: threshold.int8Threshold } : EVALUATION_SETTINGS,
    );
    try {
      const all = { frames: 0, floatDetections: 0, int8Detections: 0, matched: 0, sameType: 0 };
      for (const source of job.evaluate) {
        const held = await readSourceFrames(source, geometry, 10_000);
        const entry = await measureAgreement(float, int8, held.frames);
        agreement.push({ source: describeSource(source), ...entry });
        all.frames += entry.frames;
        all.floatDetections += entry.floatDetections;
        all.int8Detections += entry.int8Detections;
        all.matched += entry.matched;
        all.sameType += entry.sameType;
      }
      if (job.evaluate.length > 1) agreement.push({ source: 'all held-out frames', ...agreementOf(all) });
    } finally {
      await float.release();
      await int8.release();
    }
  }
  let speed: SpeedRound[] | undefined;
  if (job.speed) speed = await measureSpeed(floatBytes, result.bytes, inputs[0]!, [1, 2], job.speed.rounds, job.speed.seconds);

  const report = makeReport({
    input: job.floatModel.modelPath,
    output: job.output,
    floatBytes: floatBytes.length,
    sha256,
    options,
    source: describeSource(job.calibration),
    frames: calibration.frames.length,
    result,
    agreement,
    speed,
    sensitivity,
  });
  if (threshold) (report as QuantizeReport & { scoreThreshold?: ThresholdCalibration }).scoreThreshold = threshold;
  if (job.report) writeAtomically(job.report, `${JSON.stringify(report, null, 2)}\n`);
  const text = threshold
    ? `${formatReport(report)}\nscore threshold for the int8 model: ${threshold.int8Threshold} (float ${threshold.floatThreshold}; calibration-frame detections ${threshold.int8DetectionsAtInt8Threshold} vs float ${threshold.floatDetections})\n`
    : formatReport(report);
  return { threshold, report, text, result };
}
