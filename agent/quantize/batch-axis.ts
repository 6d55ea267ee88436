import { AgentError } from '../errors.js';
import { attribute, cloneModel, DataType, floatValues, toNumber, type ModelProto, type NodeProto, type TensorProto } from './onnx-model.js';

/**
 * Gives a batch-1 model a batch axis: the first dimension of its input and output becomes the
 * symbolic `batch` (or a fixed size), and the nodes that spell out batch 1 are rewritten. A
 * YOLOX export reshapes each head with a constant shape [1, 85, -1]: that becomes [0, 85, -1]
 * (0 copies the input's first dimension, Reshape's meaning when allowzero is unset), which is
 * the same tensor at batch 1 and the right one at any other.
 *
 * Every node is checked against what it may do to the first axis: ops that work image by image
 * (convolutions, pools, element-wise ops, quantize / dequantize) pass; Reshape, Slice,
 * Transpose, Concat, Resize, Flatten, Softmax and Pad pass when they leave the first axis alone;
 * anything else, or a shape computed at run time, is refused with MODEL_BATCH_AXIS_UNSAFE rather
 * than guessed at. The outputs per image must still be checked against batch 1 by running both
 * (bench/batch.ts, test/inference/batch-axis.test.ts): this rewrite only removes what forbids a
 * batch.
 */
export interface BatchAxisReport {
  /** Reshape nodes whose constant shape had a leading 1, now 0. */
  reshapesRewritten: string[];
  /** Intermediate shapes recorded in value_info (all of batch 1): dropped, onnxruntime infers them. */
  valueInfoShapesDropped: number;
}

/** Ops that compute each image on its own, whatever their attributes. */
const PER_IMAGE_OPS = new Set([
  'Conv',
  'ConvInteger',
  'QLinearConv',
  'Sigmoid',
  'Mul',
  'Add',
  'Sub',
  'Div',
  'Relu',
  'Clip',
  'LeakyRelu',
  'Exp',
  'Tanh',
  'HardSigmoid',
  'HardSwish',
  'Identity',
  'Cast',
  'MaxPool',
  'AveragePool',
  'GlobalAveragePool',
  'BatchNormalization',
  'QuantizeLinear',
  'DequantizeLinear',
]);

/** Ops with an `axis` attribute that must not be the batch axis. */
const AXIS_OPS = new Set(['Concat', 'Softmax', 'Flatten']);

/**
 * Axis 0, or a negative axis that is 0 for some rank: the tensors' ranks are not known here, and
 * -1 (the last axis) is the only negative one that is never the batch of a batched tensor.
 */
function mayBeBatchAxis(axis: number): boolean {
  return axis === 0 || axis < -1;
}

function unsafe(node: NodeProto, why: string): AgentError {
  return new AgentError('MODEL_BATCH_AXIS_UNSAFE', `${node.opType} node ${node.name || '(unnamed)'}: ${why}`);
}

/** The values of a constant int64 tensor (raw_data little-endian, or int64_data). */
export function int64Values(tensor: TensorProto): number[] {
  if (tensor.dataType !== DataType.INT64) throw new AgentError('MODEL_BATCH_AXIS_UNSAFE', `${tensor.name} is not an int64 tensor`);
  if (tensor.rawData && tensor.rawData.length > 0) {
    const copy = new Uint8Array(tensor.rawData); // raw_data may be unaligned inside the decode buffer
    return Array.from(new BigInt64Array(copy.buffer, 0, copy.length / 8), Number);
  }
  return (tensor.int64Data ?? []).map((value) => toNumber(value));
}

function int64Tensor(name: string, values: number[]): TensorProto {
  const data = BigInt64Array.from(values, (value) => BigInt(value));
  return { name, dataType: DataType.INT64, dims: [values.length], rawData: new Uint8Array(data.buffer), floatData: [] };
}

/**
 * A copy of `source` with a batch axis. `batch`: 'dynamic' (the symbolic dimension `batch`) or a
 * fixed size. Throws MODEL_BATCH_AXIS_UNSAFE, naming the node, when it cannot be done safely.
 */
export function withBatchAxis(source: ModelProto, batch: 'dynamic' | number = 'dynamic'): { model: ModelProto; report: BatchAxisReport } {
  const model = cloneModel(source);
  const graph = model.graph!;
  const initializers = new Map(graph.initializer.map((init) => [init.name, init] as const));
  const constant = (node: NodeProto, index: number, what: string): number[] | undefined => {
    const name = node.input[index];
    if (name === undefined || name === '') return undefined;
    const tensor = initializers.get(name);
    if (!tensor) throw unsafe(node, `its ${what} (${name}) is computed at run time, not a constant: cannot tell whether it fixes the batch`);
    return int64Values(tensor);
  };
  const reshapesRewritten: string[] = [];
  const replaced = new Set<string>();
  for (const node of graph.node) {
    const domain = node.domain ?? '';
    if (domain !== '' && domain !== 'ai.onnx') throw unsafe(node, `op of domain ${domain} is not known to leave the batch alone`);
    if (PER_IMAGE_OPS.has(node.opType)) continue;
    if (AXIS_OPS.has(node.opType)) {
      const axis = toNumber(attribute(node, 'axis')?.i ?? (node.opType === 'Concat' ? 0 : 1));
      if (mayBeBatchAxis(axis)) throw unsafe(node, `it works along axis ${axis}, the first (batch) axis or possibly it`);
      continue;
    }
    switch (node.opType) {
      case 'Transpose': {
        const perm = attribute(node, 'perm')?.ints?.map((value) => toNumber(value));
        if (perm?.[0] !== 0) throw unsafe(node, 'it moves the first (batch) axis');
        continue;
      }
      case 'Slice': {
        if (node.input.length < 3 || attribute(node, 'axes')) throw unsafe(node, 'an opset < 10 Slice (axes as an attribute) is not handled');
        const axes = constant(node, 3, 'axes');
        if (!axes || axes.some(mayBeBatchAxis)) throw unsafe(node, `it slices axes [${axes ?? 'all'}], the first (batch) axis or possibly it`);
        continue;
      }
      case 'Resize': {
        // opset 10: X, scales; opset 11 and later: X, roi, scales, sizes.
        const sizes = node.input.length > 3 ? constant(node, 3, 'sizes') : undefined;
        if (sizes && sizes.length > 0) throw unsafe(node, 'it resizes to fixed sizes, batch included');
        const scales = initializers.get(node.input[node.input.length === 2 ? 1 : 2] ?? '');
        if (!scales) throw unsafe(node, 'its scales are not a constant');
        if (floatValues(scales)[0] !== 1) throw unsafe(node, 'it scales the batch axis');
        continue;
      }
      case 'Pad': {
        const pads = attribute(node, 'pads')?.ints?.map((value) => toNumber(value)) ?? constant(node, 1, 'pads');
        if (!pads) throw unsafe(node, 'it has no pads');
        if (pads[0] !== 0 || pads[pads.length / 2] !== 0) throw unsafe(node, 'it pads the batch axis');
        continue;
      }
      case 'Reshape': {
        if (toNumber(attribute(node, 'allowzero')?.i ?? 0) !== 0) throw unsafe(node, 'allowzero=1: 0 cannot stand for "copy the batch"');
        const shape = constant(node, 1, 'shape')!;
        if (shape[0] === 0) continue;
        if (shape[0] !== 1) throw unsafe(node, `its shape [${shape.join(', ')}] does not start with the batch (1 or 0)`);
        // Another reader of the same constant keeps the original: the new one gets its own name.
        const name = `${node.input[1]}_batch`;
        if (!initializers.has(name)) {
          const rewritten = int64Tensor(name, [0, ...shape.slice(1)]);
          graph.initializer.push(rewritten);
          initializers.set(name, rewritten);
        }
        replaced.add(node.input[1]!);
        node.input[1] = name;
        reshapesRewritten.push(node.name);
        continue;
      }
      default:
        throw unsafe(node, 'this op is not known to leave the batch alone');
    }
  }
  // The replaced shape constants nothing reads any more go (onnxruntime warns about each).
  const read = new Set(graph.node.flatMap((node) => node.input));
  graph.initializer = graph.initializer.filter((init) => read.has(init.name) || !replaced.has(init.name));
  const first = batch === 'dynamic' ? { dimParam: 'batch' } : { dimValue: batch };
  const isInitializer = (name: string): boolean => initializers.has(name);
  for (const value of [...graph.input.filter((input) => !isInitializer(input.name)), ...graph.output]) {
    const dims = value.type?.tensorType?.shape?.dim;
    if (!dims || dims.length === 0) throw new AgentError('MODEL_BATCH_AXIS_UNSAFE', `${value.name}: no recorded shape to give a batch axis`);
    const dim0 = dims[0]!;
    if (!dim0.dimParam && toNumber(dim0.dimValue) !== 1) {
      throw new AgentError('MODEL_BATCH_AXIS_UNSAFE', `${value.name}: its first dimension is ${toNumber(dim0.dimValue)}, not 1`);
    }
    dims[0] = first;
  }
  let valueInfoShapesDropped = 0;
  for (const value of graph.valueInfo) {
    if (value.type?.tensorType?.shape) {
      value.type.tensorType.shape = null;
      valueInfoShapesDropped++;
    }
  }
  return { model, report: { reshapesRewritten, valueInfoShapesDropped } };
}
