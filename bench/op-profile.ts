/**
 * Where an onnxruntime run spends its time, per op type: onnxruntime's own profiler
 * (enableProfiling) over BENCH_RUNS runs of one prepared input, for each model given, at
 * BENCH_THREADS intra-op threads (default 2). Answers "what limits the int8 model" with
 * numbers: QLinearConv against the elementwise kernels around it.
 *
 * Run: node scripts/run-ts.mjs bench/op-profile.ts MODEL.onnx [MODEL2.onnx ...]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 100);
const THREADS = Number(process.env['BENCH_THREADS'] ?? 2);

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string; thread_scheduling_stats?: unknown };
}

async function profile(modelPath: string): Promise<{ perOp: Map<string, { ms: number; nodes: Set<string> }>; wallMs: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-prof-'));
  try {
    const session = await ort.InferenceSession.create(modelPath, {
      intraOpNumThreads: THREADS, interOpNumThreads: 1, graphOptimizationLevel: 'all', enableCpuMemArena: true,
      enableProfiling: true, profileFilePrefix: path.join(dir, 'prof'),
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
    const perOp = new Map<string, { ms: number; nodes: Set<string> }>();
    const runs = RUNS + 10;
    for (const event of events) {
      if (event.cat !== 'Node' || !event.name.endsWith('_kernel_time')) continue;
      const op = event.args?.op_name ?? '?';
      const entry = perOp.get(op) ?? { ms: 0, nodes: new Set<string>() };
      entry.ms += event.dur / 1000 / runs;
      entry.nodes.add(event.name);
      perOp.set(op, entry);
    }
    return { perOp, wallMs };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const models = process.argv.slice(2);
if (models.length === 0) {
  console.error('usage: node scripts/run-ts.mjs bench/op-profile.ts MODEL.onnx [MODEL2.onnx ...]');
  process.exit(2);
}
console.log(`onnxruntime ${ort.env.versions.common}, ${THREADS} intra-op threads, ${RUNS} runs, ${os.cpus().length} cores (${os.cpus()[0]?.model}), load ${os.loadavg().map((f) => f.toFixed(1)).join(' ')}`);
for (const model of models) {
  const { perOp, wallMs } = await profile(model);
  const total = [...perOp.values()].reduce((sum, entry) => sum + entry.ms, 0);
  console.log(`\n${path.basename(model)}: ${wallMs.toFixed(2)} ms per run (wall), kernels ${total.toFixed(2)} ms`);
  console.log('| op | nodes | ms per run | share |\n|---|---|---|---|');
  for (const [op, entry] of [...perOp].sort((a, b) => b[1].ms - a[1].ms)) {
    console.log(`| ${op} | ${entry.nodes.size} | ${entry.ms.toFixed(2)} | ${((100 * entry.ms) / total).toFixed(1)} % |`);
  }
}
