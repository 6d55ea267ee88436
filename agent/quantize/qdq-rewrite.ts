import { AgentError } from '../errors.js';
import { MIN_OUTPUT_OPSET, type GraphIndex } from './graph.js';
import {
  defaultOpset,
  dimsOf,
  floatTensor,
  floatValues,
  int32Tensor,
  int8Tensor,
  intAttribute,
  makeNode,
  uint8Tensor,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './onnx-model.js';
import type { QdqPlan } from './qdq-plan.js';
import type { QuantParams } from './range-search.js';

export interface WeightOptions {
  /** 8: int8 in [-127, 127]; 7: [-63, 63], which keeps AVX2's u8s8 pair sums (vpmaddubsw) from saturating. */
  weightBits: 7 | 8;
}

export interface WeightQuantization {
  conv: string;
  /** Weight SQNR over all channels, dB. */
  weightSqnrDb: number;
}

/** Per output channel, symmetric: scale = max|w| / qmax, zero point 0. */
export function quantizeWeights(values: Float32Array, channels: number, qmax: number): { q: Int8Array; scales: Float32Array; sqnrDb: number } {
  const perChannel = values.length / channels;
  const q = new Int8Array(values.length);
  const scales = new Float32Array(channels);
  let signal = 0;
  let noise = 0;
  for (let c = 0; c < channels; c++) {
    let peak = 0;
    for (let i = c * perChannel; i < (c + 1) * perChannel; i++) peak = Math.max(peak, Math.abs(values[i]!));
    const scale = Math.fround(peak > 0 ? peak / qmax : 1);
    scales[c] = scale;
    for (let i = c * perChannel; i < (c + 1) * perChannel; i++) {
      const level = Math.max(-qmax, Math.min(qmax, Math.round(values[i]! / scale)));
      q[i] = level;
      signal += values[i]! ** 2;
      noise += (values[i]! - level * scale) ** 2;
    }
  }
  return { q, scales, sqnrDb: noise > 0 ? 10 * Math.log10(signal / noise) : Number.POSITIVE_INFINITY };
}

/**
 * Rewrites a clone of the float model into QDQ form by the plan, with the chosen activation
 * parameters. Names derive from the tensors they belong to (no counters, no randomness), and
 * nodes are emitted in the original order, each QDQ pair right after its tensor's producer.
 */
export function rewriteQdq(
  model: ModelProto,
  index: GraphIndex,
  plan: QdqPlan,
  params: Map<string, QuantParams>,
  options: WeightOptions,
  biases?: Map<string, Float32Array>,
): { model: ModelProto; weights: WeightQuantization[] } {
  const graph = model.graph!;
  const initializers: TensorProto[] = [];
  const pairs = new Map<string, NodeProto[]>(); // producer output -> its Q and DQ
  const rename = new Map<string, string>();
  for (const tensor of plan.tensors) {
    const p = params.get(tensor.sharesWith ?? tensor.name);
    if (!p) throw new AgentError('INTERNAL', `no quantization parameters for ${tensor.name}`);
    const scale = `${tensor.name}_scale`;
    const zeroPoint = `${tensor.name}_zero_point`;
    initializers.push(floatTensor(scale, [], Float32Array.of(p.scale)), uint8Tensor(zeroPoint, [], Uint8Array.of(p.zeroPoint)));
    const quantized = `${tensor.name}_quantized`;
    const dequantized = `${tensor.name}_dequantized`;
    pairs.set(tensor.name, [
      makeNode('QuantizeLinear', [tensor.name, scale, zeroPoint], [quantized], `${tensor.name}_QuantizeLinear`),
      makeNode('DequantizeLinear', [quantized, scale, zeroPoint], [dequantized], `${tensor.name}_DequantizeLinear`),
    ]);
    rename.set(tensor.name, dequantized);
  }

  // Weights and biases of the quantized convs, each behind a per-channel DequantizeLinear.
  const qmax = options.weightBits === 7 ? 63 : 127;
  // Keyed by the conv's output: the plan's nodes belong to the original graph, not this clone.
  const weightNodes = new Map<string, NodeProto[]>();
  const weights: WeightQuantization[] = [];
  const replacedInitializers = new Set<string>();
  for (const conv of plan.convs) {
    const weight = index.initializers.get(conv.input[1]!)!;
    const dims = dimsOf(weight);
    const { q, scales, sqnrDb } = quantizeWeights(floatValues(weight), dims[0]!, qmax);
    weights.push({ conv: conv.name, weightSqnrDb: sqnrDb });
    const base = `${conv.name}_weight`;
    const zeros = new Int8Array(dims[0]!);
    initializers.push(
      int8Tensor(`${base}_quantized`, dims, q),
      floatTensor(`${base}_scale`, [dims[0]!], scales),
      int8Tensor(`${base}_zero_point`, [dims[0]!], zeros),
    );
    const nodes = [
      makeNode('DequantizeLinear', [`${base}_quantized`, `${base}_scale`, `${base}_zero_point`], [`${base}_dequantized`], `${base}_DequantizeLinear`, [
        intAttribute('axis', 0),
      ]),
    ];
    replacedInitializers.add(weight.name);
    const biasName = conv.input[2];
    if (biasName) {
      const inputParams = params.get(plan.tensors.find((tensor) => tensor.name === conv.input[0])?.sharesWith ?? conv.input[0]!);
      if (!inputParams) throw new AgentError('INTERNAL', `conv ${conv.name}: its input ${conv.input[0]} is not quantized`);
      const bias = biases?.get(conv.output[0]!) ?? floatValues(index.initializers.get(biasName)!);
      const biasScales = new Float32Array(bias.length);
      const biasQ = new Int32Array(bias.length);
      for (let c = 0; c < bias.length; c++) {
        // The scale onnxruntime's QLinearConv assumes for the int32 bias: input scale x weight scale.
        biasScales[c] = Math.fround(inputParams.scale * scales[c]!);
        biasQ[c] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(bias[c]! / biasScales[c]!)));
      }
      const biasBase = `${conv.name}_bias`;
      initializers.push(
        int32Tensor(`${biasBase}_quantized`, [bias.length], biasQ),
        floatTensor(`${biasBase}_scale`, [bias.length], biasScales),
        int32Tensor(`${biasBase}_zero_point`, [bias.length], new Int32Array(bias.length)),
      );
      nodes.push(
        makeNode(
          'DequantizeLinear',
          [`${biasBase}_quantized`, `${biasBase}_scale`, `${biasBase}_zero_point`],
          [`${biasBase}_dequantized`],
          `${biasBase}_DequantizeLinear`,
          [intAttribute('axis', 0)],
        ),
      );
      replacedInitializers.add(biasName);
    }
    weightNodes.set(conv.output[0]!, nodes);
  }

  const nodes: NodeProto[] = [];
  for (const input of graph.input) nodes.push(...(pairs.get(input.name) ?? []));
  for (const original of graph.node) {
    const node: NodeProto = { ...original, input: original.input.map((name) => rename.get(name) ?? name) };
    const weightDq = original.opType === 'Conv' ? weightNodes.get(original.output[0]!) : undefined;
    if (weightDq) {
      nodes.push(...weightDq);
      node.input[1] = weightDq[0]!.output[0]!;
      if (weightDq[1]) node.input[2] = weightDq[1].output[0]!;
    }
    nodes.push(node);
    for (const output of original.output) nodes.push(...(pairs.get(output) ?? []));
  }
  graph.node = nodes;
  // A float initializer still read elsewhere (shared weights) stays; the others go.
  const stillRead = new Set(nodes.flatMap((node) => node.input));
  graph.initializer = [...graph.initializer.filter((init) => !replacedInitializers.has(init.name) || stillRead.has(init.name)), ...initializers];
  const opset = Math.max(defaultOpset(model), MIN_OUTPUT_OPSET);
  model.opsetImport = [...model.opsetImport.filter((entry) => entry.domain !== '' && entry.domain !== 'ai.onnx'), { domain: '', version: opset }];
  return { model, weights };
}
