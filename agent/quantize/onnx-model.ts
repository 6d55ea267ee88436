import onnxProto from 'onnx-proto';
import { AgentError, errorMessage } from '../errors.js';

/**
 * Reading and writing ONNX models through onnx-proto's generated protobuf code (ONNX v1.10.2
 * schema). The writer always goes through the same generated encoder, which emits fields in
 * field-number order, so the same model object gives the same bytes on every run.
 */
export const { onnx } = onnxProto;

type Int64 = number | { toNumber(): number };

/**
 * The shapes of decoded messages as the rewrite uses them. protobufjs's own types mark every
 * field optional; a decoded message always has its repeated fields (empty arrays) and its
 * scalar defaults ('' and 0, from the prototype), so these are what the code really meets.
 */
export interface TensorProto {
  name: string;
  dataType: number;
  dims: Int64[];
  rawData: Uint8Array;
  floatData: number[];
  int64Data?: Int64[];
}
export interface AttributeProto {
  name: string;
  type: number;
  i?: Int64;
  ints?: Int64[];
  f?: number;
}
export interface NodeProto {
  name: string;
  opType: string;
  domain: string;
  input: string[];
  output: string[];
  attribute: AttributeProto[];
}
/** One dimension of a recorded shape: a number, a symbolic name (dynamic), or neither (unknown). */
export interface DimensionProto {
  dimValue?: Int64 | null;
  dimParam?: string | null;
}
export interface ValueInfoProto {
  name: string;
  type?: { tensorType?: { elemType?: number; shape?: { dim: DimensionProto[] } | null } | null } | null;
}
export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
}
export interface ModelProto {
  graph: GraphProto | null;
  opsetImport: Array<{ domain: string; version: Int64 }>;
  metadataProps: Array<{ key: string; value: string }>;
}

export const DataType = onnx.TensorProto.DataType;

/** int64 fields decode as Long objects (protobufjs bundles long.js); every size here fits a double. */
export function toNumber(value: Int64 | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

export function decodeModel(bytes: Uint8Array, source: string): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes) as unknown as ModelProto;
  } catch (error) {
    throw new AgentError('QUANTIZE_MODEL_INVALID', `${source} is not an ONNX model: ${errorMessage(error)}`, { cause: error });
  }
  if (!model.graph || model.graph.node.length === 0) throw new AgentError('QUANTIZE_MODEL_INVALID', `${source} has no graph nodes: not an ONNX model`);
  return model;
}

export function encodeModel(model: ModelProto): Uint8Array {
  return onnx.ModelProto.encode(model as unknown as onnxProto.onnx.IModelProto).finish();
}

/** A deep copy (encode + decode): rewrites never touch the caller's model. */
export function cloneModel(model: ModelProto): ModelProto {
  return onnx.ModelProto.decode(encodeModel(model)) as unknown as ModelProto;
}

export function dimsOf(tensor: TensorProto): number[] {
  return tensor.dims.map((dim) => toNumber(dim));
}

/** The float32 values of an initializer, from raw_data (little-endian) or float_data. */
export function floatValues(tensor: TensorProto): Float32Array {
  if (tensor.dataType !== DataType.FLOAT) {
    throw new AgentError(
      'QUANTIZE_UNSUPPORTED_OP',
      `initializer ${tensor.name} is ${DataType[tensor.dataType] ?? tensor.dataType}, only float32 weights can be quantized`,
    );
  }
  if (tensor.rawData && tensor.rawData.length > 0) {
    const copy = new Uint8Array(tensor.rawData); // raw_data may be unaligned inside the decode buffer
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  return Float32Array.from(tensor.floatData);
}

function rawTensor(name: string, dataType: number, dims: number[], bytes: Uint8Array): TensorProto {
  return { name, dataType, dims, rawData: bytes, floatData: [] };
}

export function floatTensor(name: string, dims: number[], values: Float32Array): TensorProto {
  return rawTensor(name, DataType.FLOAT, dims, new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)));
}

export function int8Tensor(name: string, dims: number[], values: Int8Array): TensorProto {
  return rawTensor(name, DataType.INT8, dims, new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)));
}

export function uint8Tensor(name: string, dims: number[], values: Uint8Array): TensorProto {
  return rawTensor(name, DataType.UINT8, dims, Uint8Array.from(values));
}

export function int32Tensor(name: string, dims: number[], values: Int32Array): TensorProto {
  return rawTensor(name, DataType.INT32, dims, new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength)));
}

export function makeNode(opType: string, inputs: string[], outputs: string[], name: string, attributes: AttributeProto[] = []): NodeProto {
  return { name, opType, domain: '', input: inputs, output: outputs, attribute: attributes };
}

export function intAttribute(name: string, value: number): AttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

/** A float32 tensor output without a fixed shape: enough for onnxruntime to return it. */
export function floatValueInfo(name: string): ValueInfoProto {
  return { name, type: { tensorType: { elemType: DataType.FLOAT } } };
}

export function attribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((attr) => attr.name === name);
}

/** The default-domain opset the model imports (0 when it imports none). */
export function defaultOpset(model: ModelProto): number {
  const entry = model.opsetImport.find((opset) => opset.domain === '' || opset.domain === 'ai.onnx' || opset.domain === null);
  return entry ? toNumber(entry.version) : 0;
}
