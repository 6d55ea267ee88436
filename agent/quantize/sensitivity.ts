import * as ort from 'onnxruntime-node';
import { createSession, type ModelInput } from './collect.js';
import { quantizableConvs } from './graph.js';
import { cloneModel, encodeModel } from './onnx-model.js';
import { planQdq } from './qdq-plan.js';
import { rewriteQdq } from './qdq-rewrite.js';
import { calibrate, type PreparedModel, type QuantizeOptions } from './quantize.js';
import { sqnrDb } from './range-search.js';

export interface Sensitivity {
  layer: string;
  /** SQNR of the model's output when only this conv (its weights, input and output) is quantized. */
  outputSqnrDb: number;
}

async function outputs(bytes: Uint8Array, inputs: ModelInput[], threads: number): Promise<Float32Array[]> {
  const session = await createSession(bytes, threads, 'disabled');
  try {
    const result: Float32Array[] = [];
    for (const input of inputs) {
      const out = await session.run({ [input.name]: new ort.Tensor('float32', input.data, input.dims) });
      result.push(Float32Array.from(out[session.outputNames[0]!]!.data as Float32Array));
      for (const name in out) out[name]!.dispose();
    }
    return result;
  } finally {
    await session.release();
  }
}

/**
 * The sensitivity sweep: each conv quantized alone (activation ranges from one calibration of
 * the whole plan), its effect on the output measured against the float model, worst first.
 * One session per layer: about 0.3 s each for YOLOX-nano's 113 convs on a few frames.
 */
export async function sensitivitySweep(prepared: PreparedModel, options: QuantizeOptions, inputs: ModelInput[]): Promise<Sensitivity[]> {
  const all = planQdq(prepared.index, { ...options, keepFloat: [] });
  const { params } = await calibrate(prepared, all, inputs, options.threads);
  const reference = await outputs(encodeModel(prepared.model), inputs, options.threads);
  const names = quantizableConvs(prepared.index).map((node) => node.name);
  const results: Sensitivity[] = [];
  for (const layer of names) {
    const plan = planQdq(prepared.index, { keepFloat: names.filter((name) => name !== layer), silu: options.silu, quantizeOthers: false });
    const { model } = rewriteQdq(cloneModel(prepared.model), prepared.index, plan, params, options);
    const actual = await outputs(encodeModel(model), inputs, options.threads);
    let power = 0;
    let noise = 0;
    actual.forEach((values, i) => {
      const expected = reference[i]!;
      for (let k = 0; k < values.length; k++) {
        power += expected[k]! ** 2;
        noise += (expected[k]! - values[k]!) ** 2;
      }
    });
    results.push({ layer, outputSqnrDb: Math.round(sqnrDb(power, noise) * 10) / 10 });
  }
  return results.sort((a, b) => a.outputSqnrDb - b.outputSqnrDb || (a.layer < b.layer ? -1 : 1));
}
