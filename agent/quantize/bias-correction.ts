import { forEachActivation, type ModelInput } from './collect.js';
import { convGroup, type GraphIndex } from './graph.js';
import { dimsOf, floatValues } from './onnx-model.js';
import type { QdqPlan } from './qdq-plan.js';
import { quantizeWeights } from './qdq-rewrite.js';

/**
 * Bias correction for weight rounding: int8 weights shift the mean of each output channel by
 * sum over the kernel of (w - w_q) * mean(input channel), which on YOLOX's depthwise convs is
 * a few percent of the channel's range; a shifted objectness logit turns into extra or
 * missing detections at the score threshold. The shift is subtracted from the float bias
 * before the bias is quantized. Only each layer's own weight error is corrected: measuring
 * the whole model's drift per layer and correcting all layers at once over-corrects (tried:
 * recall fell to 0.12), because a layer's drift is mostly inherited from the layers before.
 */
export async function correctedBiases(
  index: GraphIndex,
  plan: QdqPlan,
  inputs: ModelInput[],
  threads: number,
  weightBits: 7 | 8,
): Promise<Map<string, Float32Array>> {
  const convs = plan.convs.filter((conv) => conv.input[2]);
  const tensors = [...new Set(convs.map((conv) => conv.input[0]!))];
  const means = new Map<string, Float64Array>();
  let frames = 0;
  await forEachActivation(index.model, tensors, inputs, threads, (name, values, inputIndex) => {
    frames = Math.max(frames, inputIndex + 1);
    const conv = convs.find((candidate) => candidate.input[0] === name)!;
    const dims = dimsOf(index.initializers.get(conv.input[1]!)!);
    const channels = dims[1]! * convGroup(conv);
    let sum = means.get(name);
    if (!sum) {
      sum = new Float64Array(channels);
      means.set(name, sum);
    }
    const plane = values.length / channels;
    for (let c = 0; c < channels; c++) {
      let total = 0;
      for (let i = c * plane; i < (c + 1) * plane; i++) total += values[i]!;
      sum[c] = sum[c]! + total / plane;
    }
  });
  const corrected = new Map<string, Float32Array>();
  const qmax = weightBits === 7 ? 63 : 127;
  for (const conv of convs) {
    const weightTensor = index.initializers.get(conv.input[1]!)!;
    const [outChannels, perGroupIn, ...kernel] = dimsOf(weightTensor) as [number, number, ...number[]];
    const weights = floatValues(weightTensor);
    const { q, scales } = quantizeWeights(weights, outChannels, qmax);
    const mean = means.get(conv.input[0]!)!;
    const outPerGroup = outChannels / convGroup(conv);
    const taps = kernel.reduce((product, size) => product * size, 1);
    const bias = Float32Array.from(floatValues(index.initializers.get(conv.input[2]!)!));
    for (let o = 0; o < outChannels; o++) {
      const firstIn = Math.floor(o / outPerGroup) * perGroupIn;
      let shift = 0;
      for (let j = 0; j < perGroupIn; j++) {
        let error = 0;
        for (let k = 0; k < taps; k++) {
          const at = (o * perGroupIn + j) * taps + k;
          error += weights[at]! - q[at]! * scales[o]!;
        }
        shift += (error * mean[firstIn + j]!) / frames;
      }
      bias[o] = bias[o]! + shift;
    }
    corrected.set(conv.output[0]!, bias);
  }
  return corrected;
}
