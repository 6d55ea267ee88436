import { AgentError } from '../errors.js';
import { attribute, defaultOpset, floatValueInfo, toNumber, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from './onnx-model.js';

/**
 * What the quantizer needs to know about a float graph: who produces and who reads each
 * tensor, the initializers, the convolutions and the SiLUs (x * Sigmoid(x)) after them.
 */
export interface GraphIndex {
  model: ModelProto;
  graph: GraphProto;
  producer: Map<string, NodeProto>;
  consumers: Map<string, NodeProto[]>;
  initializers: Map<string, TensorProto>;
  /** Conv output -> the Sigmoid and Mul that make its SiLU. */
  silu: Map<string, { sigmoid: NodeProto; mul: NodeProto }>;
  nodesByName: Map<string, NodeProto>;
}

/**
 * Ops the rewrite knows. Quantizable ones may get QDQ around them; the others stay float and
 * read dequantized values. Anything else is refused rather than guessed at: a control-flow op
 * hides tensors the calibration cannot see, and an unknown op may not accept what we feed it.
 */
export const QUANTIZABLE_OPS = new Set(['Conv', 'Add', 'Concat', 'MaxPool', 'Resize', 'Sigmoid', 'Mul']);
const FLOAT_OPS = new Set([
  'Slice',
  'Reshape',
  'Transpose',
  'Flatten',
  'Identity',
  'Shape',
  'Gather',
  'Constant',
  'Relu',
  'Clip',
  'LeakyRelu',
  'Sub',
  'Div',
  'Softmax',
  'AveragePool',
  'GlobalAveragePool',
  'Pad',
  'Exp',
  'Tanh',
  'HardSigmoid',
  'HardSwish',
  'BatchNormalization',
  'Cast',
]);
/** Ops whose inputs changed at opset 13 (attributes became inputs): a model below 13 using them cannot simply be raised to 13. */
const CHANGED_AT_13 = new Set(['Squeeze', 'Unsqueeze', 'Split', 'ReduceSum']);
export const MIN_OUTPUT_OPSET = 13;

export function checkSupported(model: ModelProto): void {
  const opset = defaultOpset(model);
  const unsupported = new Map<string, string>();
  for (const node of model.graph!.node) {
    const domain = node.domain ?? '';
    if (domain !== '' && domain !== 'ai.onnx') unsupported.set(`${domain}.${node.opType}`, node.name);
    else if (CHANGED_AT_13.has(node.opType) && opset < MIN_OUTPUT_OPSET) unsupported.set(`${node.opType} (at opset ${opset}, changed at 13)`, node.name);
    else if (!QUANTIZABLE_OPS.has(node.opType) && !FLOAT_OPS.has(node.opType)) unsupported.set(node.opType, node.name);
  }
  if (unsupported.size > 0) {
    const list = [...unsupported].map(([op, name]) => `${op} (node ${name || '(unnamed)'})`).join(', ');
    throw new AgentError('QUANTIZE_UNSUPPORTED_OP', `the model uses ops the quantizer does not handle: ${list}`);
  }
  const input = model.graph!.input.find((value) => !model.graph!.initializer.some((init) => init.name === value.name));
  if (input?.type?.tensorType?.elemType !== 1) {
    throw new AgentError('QUANTIZE_MODEL_INVALID', `the model's input ${input?.name ?? '(none)'} is not float32: only float models can be quantized`);
  }
  if (model.graph!.node.some((node) => node.opType === 'QuantizeLinear' || node.opType === 'DequantizeLinear')) {
    throw new AgentError('QUANTIZE_MODEL_INVALID', 'the model is already quantized (it has QuantizeLinear/DequantizeLinear nodes): give the float original');
  }
}

export function indexGraph(model: ModelProto): GraphIndex {
  const graph = model.graph!;
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  const nodesByName = new Map<string, NodeProto>();
  for (const node of graph.node) {
    if (node.name) nodesByName.set(node.name, node);
    for (const output of node.output) producer.set(output, node);
    for (const input of node.input) {
      if (input === '') continue;
      const list = consumers.get(input);
      if (list) {
        if (!list.includes(node)) list.push(node);
      } else consumers.set(input, [node]);
    }
  }
  const initializers = new Map(graph.initializer.map((init) => [init.name, init] as const));
  const silu = new Map<string, { sigmoid: NodeProto; mul: NodeProto }>();
  for (const sigmoid of graph.node) {
    if (sigmoid.opType !== 'Sigmoid') continue;
    const x = sigmoid.input[0]!;
    const mul = (consumers.get(sigmoid.output[0]!) ?? []).find((node) => node.opType === 'Mul' && node.input.includes(x));
    if (mul && producer.get(x)?.opType === 'Conv') silu.set(x, { sigmoid, mul });
  }
  return { model, graph, producer, consumers, initializers, silu, nodesByName };
}

/** A Conv whose weight (and bias, when it has one) are initializers: the layers that can be quantized. */
export function quantizableConvs(index: GraphIndex): NodeProto[] {
  return index.graph.node.filter(
    (node) =>
      node.opType === 'Conv' &&
      index.initializers.has(node.input[1]!) &&
      (node.input[2] === undefined || node.input[2] === '' || index.initializers.has(node.input[2])),
  );
}

/** A float activation tensor: produced by a node or a graph input, not an initializer. */
export function isActivation(index: GraphIndex, name: string): boolean {
  return (
    name !== '' &&
    !index.initializers.has(name) &&
    (index.producer.has(name) || index.graph.input.some((input) => input.name === name)) &&
    index.producer.get(name)?.opType !== 'Constant'
  );
}

/** Checks layer names given by the user; an unknown one is an error naming the nearest real names. */
export function checkLayerNames(index: GraphIndex, names: string[]): void {
  const unknown = names.filter((name) => !index.nodesByName.has(name));
  if (unknown.length === 0) return;
  const convs = quantizableConvs(index).map((node) => node.name);
  throw new AgentError(
    'QUANTIZE_UNKNOWN_LAYER',
    `no layer named ${unknown.map((name) => `"${name}"`).join(', ')} in the model (its ${convs.length} conv layers are ${convs.slice(0, 4).join(', ')} ... ${convs.slice(-2).join(', ')})`,
  );
}

/**
 * A copy of the float model that also returns the given tensors, so one run shows every
 * activation the calibration needs. The caller passes a clone: this edits it in place.
 */
export function exposeTensors(model: ModelProto, names: string[]): ModelProto {
  const graph = model.graph!;
  const existing = new Set(graph.output.map((output) => output.name));
  for (const name of names) if (!existing.has(name)) graph.output.push(floatValueInfo(name));
  return model;
}

/** Group count of a Conv (depthwise convs have group = channels). */
export function convGroup(node: NodeProto): number {
  return toNumber(attribute(node, 'group')?.i ?? 1);
}
