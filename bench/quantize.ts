/**
 * int8 vs float speed of the quantizer's output, side by side in one run: for each SiLU
 * variant, the model is quantized (60 calibration frames, even seconds of the highway clip),
 * then bare onnxruntime frames/s of float and int8 are measured alternately, BENCH_ROUNDS
 * rounds of BENCH_SECONDS each, at 1 and 2 threads; the median int8/float ratio is printed,
 * with the agreement on the held-out frames (odd seconds + the second scene).
 *
 * Run: node scripts/run-ts.mjs bench/quantize.ts   (BENCH_ROUNDS default 5, BENCH_SECONDS default 3)
 */
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs';
import { describeCpuInt8 } from '../agent/inference/cpu-features.js';
import { resolveModel } from '../agent/inference/model-files.js';
import { manifestsDir } from '../agent/paths.js';
import { median } from '../agent/quantize/evaluate.js';
import { DEFAULT_OPTIONS } from '../agent/quantize/quantize.js';
import { runQuantizeJob } from '../agent/quantize/run.js';
import { assetPath } from '../test/support/assets.js';
import { KEEP_FLOAT } from '../test/quantize/keep-float.js';

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 5);
const SECONDS = Number(process.env['BENCH_SECONDS'] ?? 3);
const floatModel = resolveModel(path.join(manifestsDir(), 'yolox-nano.json'), path.dirname(assetPath('yolox-nano.onnx')));
const clip = assetPath('highway-cctv-320x240.mp4');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-bench-quantize-'));
// int8 speed and agreement depend on the CPU's int8 path (VNNI, AVX2, ARM dot product).
console.log(`cpu: ${describeCpuInt8()}`);
try {
  for (const silu of ['qlinear', 'float'] as const) {
    const { report } = await runQuantizeJob({
      floatModel,
      output: path.join(dir, `yolox-nano-int8-${silu}.onnx`),
      calibration: { kind: 'video', file: clip, fps: 4, seconds: 'even' },
      frames: 60,
      options: { ...DEFAULT_OPTIONS, keepFloat: KEEP_FLOAT, silu },
      evaluate: [
        { kind: 'video', file: clip, fps: 3, seconds: 'odd' },
        { kind: 'video', file: assetPath('overhead-road-768x432.mp4'), fps: 2, seconds: 'all' },
      ],
      speed: { rounds: ROUNDS, seconds: SECONDS },
      sweep: 0,
      report: undefined,
    });
    const all = report.agreement[report.agreement.length - 1]!;
    console.log(
      `silu ${silu}: ${(report.model.int8Bytes / 1e6).toFixed(2)} MB, agreement precision ${all.precision.toFixed(3)} recall ${all.recall.toFixed(3)} on ${all.frames} held-out frames`,
    );
    for (const threads of [1, 2]) {
      const rounds = report.speed!.rounds.filter((entry) => entry.threads === threads);
      console.log(
        `  ${threads} thread(s): int8/float frames/s median ${median(rounds.map((entry) => entry.ratio)).toFixed(2)} over ${rounds.length} rounds: ${rounds.map((entry) => `${entry.floatFps.toFixed(1)}/${entry.int8Fps.toFixed(1)}=${entry.ratio.toFixed(2)}`).join(' ')}`,
      );
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
