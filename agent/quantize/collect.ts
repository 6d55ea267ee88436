import * as ort from 'onnxruntime-node';
import { AgentError, errorMessage } from '../errors.js';
import { exposeTensors } from './graph.js';
import { cloneModel, encodeModel, type ModelProto } from './onnx-model.js';
import { Histogram } from './range-search.js';

/** One calibration input, already in the model's tensor layout. */
export interface ModelInput {
  name: string;
  dims: number[];
  data: Float32Array;
}

/** Session options for calibration and measurement; the arena is off, as in the agent. */
export function sessionOptions(threads: number, optimization: 'disabled' | 'all' = 'all'): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: optimization,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    enableCpuMemArena: false,
    logSeverityLevel: 3,
  };
}

export async function createSession(bytes: Uint8Array, threads: number, optimization: 'disabled' | 'all' = 'all'): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, sessionOptions(threads, optimization));
  } catch (error) {
    throw new AgentError('QUANTIZE_MODEL_INVALID', `onnxruntime cannot load the model: ${errorMessage(error).split('\n')[0]}`, { cause: error });
  }
}

/**
 * Runs the model once per input with `tensors` exposed as outputs, handing each run's values
 * to `visit`, in input order (the order is part of what makes the result reproducible).
 */
export async function forEachActivation(
  model: ModelProto,
  tensors: string[],
  inputs: ModelInput[],
  threads: number,
  visit: (name: string, values: Float32Array, inputIndex: number) => void,
  optimization: 'disabled' | 'all' = 'all',
): Promise<void> {
  const exposed = exposeTensors(cloneModel(model), tensors);
  const session = await createSession(encodeModel(exposed), threads, optimization);
  try {
    // After the first run, outputs go into buffers allocated once (about 2x faster than new ones per run).
    let fetches: string[] | Record<string, ort.Tensor> = tensors;
    for (const [inputIndex, input] of inputs.entries()) {
      const feeds = { [input.name]: new ort.Tensor('float32', input.data, input.dims) };
      const outputs: ort.InferenceSession.ReturnType = await session.run(feeds, fetches as Record<string, ort.Tensor>);
      for (const name of tensors) visit(name, outputs[name]!.data as Float32Array, inputIndex);
      if (Array.isArray(fetches)) {
        fetches = Object.fromEntries(tensors.map((name) => [name, new ort.Tensor('float32', new Float32Array(outputs[name]!.size), outputs[name]!.dims)]));
        for (const name in outputs) outputs[name]!.dispose();
      }
    }
  } finally {
    await session.release();
  }
}

/**
 * One pass over the calibration inputs, each tensor's values added to its growing histogram.
 * (Exposing every activation makes a run about 10x slower than a plain one, so one pass, not two.)
 */
export async function collectHistograms(model: ModelProto, tensors: string[], inputs: ModelInput[], threads: number): Promise<Map<string, Histogram>> {
  const histograms = new Map<string, Histogram>(tensors.map((name) => [name, new Histogram()]));
  await forEachActivation(model, tensors, inputs, threads, (name, values) => histograms.get(name)!.add(values));
  return histograms;
}
