import type { ModelManifest } from '../inference/manifest.js';
import { createPreprocessor } from '../inference/preprocess.js';
import { correctedBiases } from './bias-correction.js';
import { collectHistograms, type ModelInput } from './collect.js';
import { checkLayerNames, checkSupported, indexGraph, type GraphIndex } from './graph.js';
import { cloneModel, decodeModel, encodeModel, type ModelProto } from './onnx-model.js';
import { planQdq, type QdqPlan, type SiluMode } from './qdq-plan.js';
import { rewriteQdq, type WeightQuantization } from './qdq-rewrite.js';
import { chooseRange, sqnrDb, type Histogram, type QuantParams } from './range-search.js';

export interface QuantizeOptions {
  /** Conv layers kept float, by node name. */
  keepFloat: string[];
  silu: SiluMode;
  quantizeOthers: boolean;
  weightBits: 7 | 8;
  /** onnxruntime threads for the calibration runs (does not change the result). */
  threads: number;
  /** Correct each conv's bias for the mean shift its int8 weights cause (bias-correction.ts). */
  biasCorrection: boolean;
}

export const DEFAULT_OPTIONS: QuantizeOptions = { keepFloat: [], silu: 'qlinear', quantizeOthers: true, weightBits: 8, threads: 2, biasCorrection: true };

export interface ActivationReport {
  tensor: string;
  /** The node that writes it. */
  producer: string;
  siluAfter: boolean;
  sharesWith: string | undefined;
  lo: number;
  hi: number;
  scale: number;
  zeroPoint: number;
  /** Of this tensor's own rounding and clipping on the calibration frames, after the SiLU when siluAfter. */
  calibrationSqnrDb: number;
}

export interface QuantizeResult {
  bytes: Uint8Array;
  plan: QdqPlan;
  activations: ActivationReport[];
  weights: WeightQuantization[];
}

/** Frames (HWC bytes at the model's size) to model inputs, with the manifest's preprocessing. */
export function modelInputs(frames: Buffer[], manifest: ModelManifest): ModelInput[] {
  const { width, height, layout, name } = manifest.input;
  const dims = layout === 'NCHW' ? [1, 3, height, width] : [1, height, width, 3];
  const preprocess = createPreprocessor(manifest.input);
  return frames.map((frame) => {
    const data = new Float32Array(width * height * 3);
    preprocess(frame, data);
    return { name, dims, data };
  });
}

export interface PreparedModel {
  model: ModelProto;
  index: GraphIndex;
}

/** Decodes and checks a float model: supported ops, a float input, not already quantized. */
export function prepareModel(bytes: Uint8Array, source: string): PreparedModel {
  const model = decodeModel(bytes, source);
  checkSupported(model);
  return { model, index: indexGraph(model) };
}

/** Activation ranges for the planned tensors, by MSE over their calibration histograms. */
export async function calibrate(
  prepared: PreparedModel,
  plan: QdqPlan,
  inputs: ModelInput[],
  threads: number,
): Promise<{ params: Map<string, QuantParams>; reports: ActivationReport[]; histograms: Map<string, Histogram> }> {
  const measured = plan.tensors.filter((tensor) => tensor.sharesWith === undefined);
  const histograms = await collectHistograms(
    prepared.model,
    measured.map((tensor) => tensor.name),
    inputs,
    threads,
  );
  const params = new Map<string, QuantParams>();
  const choices = new Map<string, ReturnType<typeof chooseRange>>();
  for (const tensor of measured) {
    const choice = chooseRange(histograms.get(tensor.name)!, tensor.siluAfter);
    choices.set(tensor.name, choice);
    params.set(tensor.name, { scale: choice.scale, zeroPoint: choice.zeroPoint });
  }
  const reports = plan.tensors.map((tensor): ActivationReport => {
    const choice = choices.get(tensor.sharesWith ?? tensor.name)!;
    return {
      tensor: tensor.name,
      producer: prepared.index.producer.get(tensor.name)?.name ?? '(graph input)',
      siluAfter: tensor.siluAfter,
      sharesWith: tensor.sharesWith,
      lo: choice.lo,
      hi: choice.hi,
      scale: choice.scale,
      zeroPoint: choice.zeroPoint,
      calibrationSqnrDb: sqnrDb(choice.power, choice.mse),
    };
  });
  return { params, reports, histograms };
}

/** The options that shape the file, in a fixed key order: recorded in the model's metadata. */
function provenance(options: QuantizeOptions): string {
  return JSON.stringify({
    tool: 'cctv-agent model quantize',
    format: 'QDQ',
    weights: `int${options.weightBits} symmetric per-channel`,
    activations: 'uint8 per-tensor, MSE ranges',
    silu: options.silu,
    biasCorrection: options.biasCorrection,
    quantizeOthers: options.quantizeOthers,
    keepFloat: [...options.keepFloat].sort(),
  });
}

/**
 * Static post-training quantization of a float ONNX model into QDQ form, calibrated on the
 * given inputs. The same model bytes, inputs and options give the same output bytes.
 */
export async function quantizeModel(floatBytes: Uint8Array, inputs: ModelInput[], options: QuantizeOptions, source = 'model'): Promise<QuantizeResult> {
  const prepared = prepareModel(floatBytes, source);
  checkLayerNames(prepared.index, options.keepFloat);
  const plan = planQdq(prepared.index, options);
  const { params, reports } = await calibrate(prepared, plan, inputs, options.threads);
  // The input means need no more than a few frames: 16 spread over the calibration set.
  const sample = inputs.length <= 16 ? inputs : Array.from({ length: 16 }, (_, i) => inputs[Math.floor((i * inputs.length) / 16)]!);
  const biases = options.biasCorrection ? await correctedBiases(prepared.index, plan, sample, options.threads, options.weightBits) : undefined;
  return build(prepared, plan, params, options, reports, biases);
}

export function build(
  prepared: PreparedModel,
  plan: QdqPlan,
  params: Map<string, QuantParams>,
  options: QuantizeOptions,
  activations: ActivationReport[],
  biases?: Map<string, Float32Array>,
): QuantizeResult {
  const { model, weights } = rewriteQdq(cloneModel(prepared.model), prepared.index, plan, params, options, biases);
  model.metadataProps = [...model.metadataProps.filter((entry) => entry.key !== 'cctv.quantize'), { key: 'cctv.quantize', value: provenance(options) }];
  return { bytes: encodeModel(model), plan, activations, weights };
}
