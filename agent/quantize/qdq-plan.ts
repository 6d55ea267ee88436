import { isActivation, quantizableConvs, type GraphIndex } from './graph.js';
import type { NodeProto } from './onnx-model.js';

/**
 * Where the QDQ pairs go. A quantized node has every float activation it reads and writes
 * quantized (QuantizeLinear then DequantizeLinear), so onnxruntime's QDQ fusion can turn
 * DQ(x) + DQ(w) + Conv + Q(y) into QLinearConv, DQ + DQ + Add + Q into QLinearAdd, and so on.
 */
export type SiluMode =
  /** Sigmoid and Mul quantized too: they become QLinearSigmoid + QLinearMul (the reference model's shape). */
  | 'qlinear'
  /** The SiLU stays float between the conv's DequantizeLinear and the next QuantizeLinear. */
  | 'float';

export interface PlanOptions {
  /** Conv node names kept float (with their SiLU). */
  keepFloat: string[];
  silu: SiluMode;
  /** Also quantize Add, Concat, MaxPool and Resize (fused to QLinearAdd / QLinearConcat, or run on uint8). */
  quantizeOthers: boolean;
}

export interface PlannedTensor {
  name: string;
  /** Every reader of this tensor is its SiLU: its range is chosen by the error after the SiLU. */
  siluAfter: boolean;
  /** Takes its parameters from this tensor (MaxPool and Resize outputs: onnxruntime runs them on uint8 only when input and output share them). */
  sharesWith: string | undefined;
}

export interface QdqPlan {
  /** Convs whose weights become int8, in graph order. */
  convs: NodeProto[];
  /** Activations to quantize, in graph order of their producers. */
  tensors: PlannedTensor[];
}

/** The activation inputs of a node that its quantized form reads (Resize reads roi and scales as float). */
function activationInputs(node: NodeProto): string[] {
  if (node.opType === 'Conv' || node.opType === 'Resize' || node.opType === 'MaxPool') return [node.input[0]!];
  return node.input;
}

export function planQdq(index: GraphIndex, options: PlanOptions): QdqPlan {
  const keep = new Set(options.keepFloat);
  const convs = quantizableConvs(index).filter((node) => !keep.has(node.name));
  const quantized = new Set<NodeProto>(convs);
  if (options.silu === 'qlinear') {
    for (const conv of convs) {
      const pair = index.silu.get(conv.output[0]!);
      if (pair) {
        quantized.add(pair.sigmoid);
        quantized.add(pair.mul);
      }
    }
  }
  if (options.quantizeOthers) {
    for (const node of index.graph.node) {
      if (['Add', 'Concat', 'MaxPool', 'Resize'].includes(node.opType) && !keep.has(node.name)) quantized.add(node);
    }
  }
  const wanted = new Map<string, string | undefined>();
  for (const node of index.graph.node) {
    if (!quantized.has(node)) continue;
    for (const input of activationInputs(node)) if (isActivation(index, input) && !wanted.has(input)) wanted.set(input, undefined);
    const output = node.output[0]!;
    const shares = node.opType === 'MaxPool' || node.opType === 'Resize' ? node.input[0]! : undefined;
    if (!wanted.has(output) || shares !== undefined) wanted.set(output, shares);
  }
  // Graph order, by producer (graph inputs first), so that names and the file are stable.
  const order = new Map<string, number>();
  index.graph.input.forEach((input, i) => {
    order.set(input.name, -1 - i);
  });
  index.graph.node.forEach((node, i) => {
    for (const output of node.output) order.set(output, i);
  });
  const tensors = [...wanted]
    .sort(([a], [b]) => order.get(a)! - order.get(b)! || (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, sharesWith]): PlannedTensor => {
      const pair = index.silu.get(name);
      const readers = index.consumers.get(name) ?? [];
      const siluAfter = pair !== undefined && readers.every((node) => node === pair.sigmoid || node === pair.mul);
      return { name, siluAfter, sharesWith };
    });
  // A chain of shared parameters resolves to a tensor that is calibrated itself.
  const byName = new Map(tensors.map((tensor) => [tensor.name, tensor]));
  for (const tensor of tensors) {
    let root = tensor.sharesWith;
    while (root !== undefined && byName.get(root)?.sharesWith !== undefined) root = byName.get(root)!.sharesWith;
    tensor.sharesWith = root;
  }
  return { convs, tensors };
}
