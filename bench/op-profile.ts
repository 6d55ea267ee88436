/**
 * Where an onnxruntime run spends its time, per op type: onnxruntime's own profiler
 * (enableProfiling) over BENCH_RUNS runs of one prepared input, for each model given, at
 * BENCH_THREADS intra-op threads (default 2). Answers "what limits the int8 model" with
 * numbers: QLinearConv against the elementwise kernels around it.
 *
 * With a float model first and its int8 models after, it also compares them block by block
 * (conv + SiLU, matched by the SiLU's Mul node name): float Conv + QuickGelu against QLinearConv
 * + QLinearSigmoid + QLinearMul, and sums what an ideal per-layer choice could save.
 *
 * Run: node scripts/run-ts.mjs bench/op-profile.ts FLOAT.onnx [INT8.onnx ...]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describeCpuInt8 } from '../agent/inference/cpu-features.js';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 100);
const THREADS = Number(process.env['BENCH_THREADS'] ?? 2);

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}

interface NodeTime {
  node: string;
  op: string;
  ms: number;
}

async function profile(modelPath: string): Promise<{ perNode: NodeTime[]; wallMs: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-prof-'));
  try {
    const session = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: THREADS,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      enableCpuMemArena: true,
      enableProfiling: true,
      profileFilePrefix: path.join(dir, 'prof'),
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    const input = session.inputMetadata[0]!;
    const dims = (input as unknown as { shape: ReadonlyArray<number | string> }).shape.map((dim) => (typeof dim === 'number' && dim > 0 ? dim : 1));
    const feeds = { [input.name]: new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(114), dims) };
    for (let i = 0; i < 10; i++) await session.run(feeds);
    const started = performance.now();
    for (let i = 0; i < RUNS; i++) await session.run(feeds);
    const wallMs = (performance.now() - started) / RUNS;
    session.endProfiling();
    await session.release();
    const file = fs.readdirSync(dir).find((name) => name.endsWith('.json'))!;
    const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as ProfileEvent[];
    const perNode = new Map<string, NodeTime>();
    const runs = RUNS + 10;
    for (const event of events) {
      if (event.cat !== 'Node' || !event.name.endsWith('_kernel_time')) continue;
      const node = event.name.slice(0, -'_kernel_time'.length);
      const timed = perNode.get(node) ?? { node, op: event.args?.op_name ?? '?', ms: 0 };
      timed.ms += event.dur / 1000 / runs;
      perNode.set(node, timed);
    }
    return { perNode: [...perNode.values()], wallMs };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Conv + SiLU blocks in execution order, keyed by the SiLU's Mul node ("Mul_61"). */
function blocks(nodes: NodeTime[]): Map<string, { conv: number; silu: number; int8: boolean }> {
  const found = new Map<string, { conv: number; silu: number; int8: boolean }>();
  let conv: number | undefined;
  let sigmoid = 0;
  for (const { node, op, ms } of nodes) {
    if (op === 'Conv' || op === 'QLinearConv') {
      conv = ms;
      sigmoid = 0;
    } else if (op === 'QLinearSigmoid') {
      sigmoid = ms;
    } else if ((op === 'QuickGelu' || op === 'QLinearMul') && conv !== undefined) {
      found.set(node.split('/')[0]!, { conv, silu: sigmoid + ms, int8: op === 'QLinearMul' });
      conv = undefined;
    }
  }
  return found;
}

function compareBlocks(float: NodeTime[], int8: NodeTime[]): void {
  const f = blocks(float);
  const q = blocks(int8);
  let floatConv = 0;
  let floatSilu = 0;
  let int8Conv = 0;
  let int8Silu = 0;
  let gains = 0;
  let losses = 0;
  let wins = 0;
  let compared = 0;
  for (const [name, a] of f) {
    const b = q.get(name);
    if (!b?.int8) continue;
    compared++;
    floatConv += a.conv;
    floatSilu += a.silu;
    int8Conv += b.conv;
    int8Silu += b.silu;
    const gain = a.conv + a.silu - b.conv - b.silu;
    if (gain > 0) {
      gains += gain;
      wins++;
    } else {
      losses -= gain;
    }
  }
  console.log(
    `blocks quantized in both: ${compared}; conv float ${floatConv.toFixed(2)} ms vs int8 ${int8Conv.toFixed(2)} ms (${(floatConv / int8Conv).toFixed(2)}x); ` +
      `SiLU float QuickGelu ${floatSilu.toFixed(2)} ms vs QLinearSigmoid + QLinearMul ${int8Silu.toFixed(2)} ms (${(floatSilu / int8Silu).toFixed(2)}x)`,
  );
  console.log(
    `int8 faster in ${wins} blocks (saving ${gains.toFixed(2)} ms), slower in ${compared - wins} (losing ${losses.toFixed(2)} ms): ` +
      `an ideal per-layer choice saves at most ${gains.toFixed(2)} ms of the float model's kernels, before the QuantizeLinear/DequantizeLinear at every boundary`,
  );
}

const models = process.argv.slice(2).filter((arg) => arg.endsWith('.onnx'));
if (models.length === 0) {
  console.error('usage: node scripts/run-ts.mjs bench/op-profile.ts MODEL.onnx [MODEL2.onnx ...]');
  process.exit(2);
}
console.log(`cpu: ${describeCpuInt8()}`);
console.log(
  `onnxruntime ${ort.env.versions.common}, ${THREADS} intra-op threads, ${RUNS} runs, ${os.cpus().length} cores (${os.cpus()[0]?.model}), load ${os
    .loadavg()
    .map((f) => f.toFixed(1))
    .join(' ')}`,
);
let floatNodes: NodeTime[] | undefined;
for (const model of models) {
  const { perNode, wallMs } = await profile(model);
  const perOp = new Map<string, { ms: number; nodes: number }>();
  for (const { op, ms } of perNode) {
    const entry = perOp.get(op) ?? { ms: 0, nodes: 0 };
    entry.ms += ms;
    entry.nodes++;
    perOp.set(op, entry);
  }
  const total = [...perOp.values()].reduce((sum, entry) => sum + entry.ms, 0);
  console.log(`\n${path.basename(model)}: ${wallMs.toFixed(2)} ms per run (wall), kernels ${total.toFixed(2)} ms`);
  console.log('| op | nodes | ms per run | share |\n|---|---|---|---|');
  for (const [op, entry] of [...perOp].sort((a, b) => b[1].ms - a[1].ms)) {
    console.log(`| ${op} | ${entry.nodes} | ${entry.ms.toFixed(2)} | ${((100 * entry.ms) / total).toFixed(1)} % |`);
  }
  if (floatNodes === undefined) floatNodes = perNode;
  else compareBlocks(floatNodes, perNode);
}
