import type { Agreement, SpeedRound } from './evaluate.js';
import { median } from './evaluate.js';
import type { QuantizeOptions, QuantizeResult } from './quantize.js';
import type { Sensitivity } from './sensitivity.js';

/** The quantization report: written as JSON next to the model and printed as text. */
export interface QuantizeReport {
  model: { input: string; output: string; floatBytes: number; int8Bytes: number; sha256: string };
  options: Omit<QuantizeOptions, 'threads'>;
  calibration: { source: string; frames: number };
  layers: Array<{ tensor: string; producer: string; siluAfter: boolean; scale: number; zeroPoint: number; lo: number; hi: number; calibrationSqnrDb: number }>;
  weights: Array<{ conv: string; weightSqnrDb: number }>;
  agreement: Array<{ source: string } & Agreement>;
  speed: { rounds: SpeedRound[]; medianRatio: Record<string, number>; limits: string } | undefined;
  sensitivity: Sensitivity[] | undefined;
}

const round = (value: number, digits = 2): number => (Number.isFinite(value) ? Math.round(value * 10 ** digits) / 10 ** digits : value);

export function makeReport(parts: {
  input: string;
  output: string;
  floatBytes: number;
  sha256: string;
  options: QuantizeOptions;
  source: string;
  frames: number;
  result: QuantizeResult;
  agreement: Array<{ source: string } & Agreement>;
  speed: SpeedRound[] | undefined;
  sensitivity: Sensitivity[] | undefined;
}): QuantizeReport {
  const { threads: _threads, ...options } = parts.options;
  const medianRatio: Record<string, number> = {};
  for (const threads of new Set(parts.speed?.map((entry) => entry.threads) ?? []))
    medianRatio[String(threads)] = round(median(parts.speed!.filter((entry) => entry.threads === threads).map((entry) => entry.ratio)));
  return {
    model: { input: parts.input, output: parts.output, floatBytes: parts.floatBytes, int8Bytes: parts.result.bytes.length, sha256: parts.sha256 },
    options,
    calibration: { source: parts.source, frames: parts.frames },
    layers: parts.result.activations.map((layer) => ({
      tensor: layer.tensor,
      producer: layer.producer,
      siluAfter: layer.siluAfter,
      scale: layer.scale,
      zeroPoint: layer.zeroPoint,
      lo: round(layer.lo, 4),
      hi: round(layer.hi, 4),
      calibrationSqnrDb: round(layer.calibrationSqnrDb, 1),
    })),
    weights: parts.result.weights.map((weight) => ({ conv: weight.conv, weightSqnrDb: round(weight.weightSqnrDb, 1) })),
    agreement: parts.agreement.map((entry) => ({ ...entry, precision: round(entry.precision, 3), recall: round(entry.recall, 3) })),
    speed: parts.speed && {
      rounds: parts.speed.map((entry) => ({
        threads: entry.threads,
        floatFps: round(entry.floatFps, 1),
        int8Fps: round(entry.int8Fps, 1),
        ratio: round(entry.ratio),
      })),
      medianRatio,
      limits:
        "on an AVX2 CPU without VNNI, onnxruntime's QLinearConv is only 1.1-1.4x faster than its float NCHWc Conv (and does not gain from a second thread), while each SiLU becomes QLinearSigmoid + QLinearMul, 0.7-0.85x the speed of float's fused QuickGelu; float layers add QuantizeLinear/DequantizeLinear at every boundary. bench/op-profile.ts measures it per op and per block; see docs/benchmarks/quantize.md",
    },
    sensitivity: parts.sensitivity,
  };
}

export function formatReport(report: QuantizeReport): string {
  const lines: string[] = [];
  const kb = (bytes: number): string => `${(bytes / 1e6).toFixed(2)} MB`;
  lines.push(
    `model ${report.model.output}: ${kb(report.model.int8Bytes)} (float ${kb(report.model.floatBytes)}, ${(report.model.floatBytes / report.model.int8Bytes).toFixed(1)}x smaller), sha256 ${report.model.sha256}`,
  );
  lines.push(
    `calibration: ${report.calibration.frames} frames of ${report.calibration.source}; silu ${report.options.silu}, weights int${report.options.weightBits}, kept float: ${report.options.keepFloat.join(', ') || 'none'}`,
  );
  const worst = [...report.layers].sort((a, b) => a.calibrationSqnrDb - b.calibrationSqnrDb).slice(0, 10);
  lines.push('lowest per-layer SQNR (activation rounding and clipping on the calibration frames):');
  for (const layer of worst)
    lines.push(`  ${layer.calibrationSqnrDb.toFixed(1).padStart(6)} dB  ${layer.producer} -> ${layer.tensor}${layer.siluAfter ? ' (after SiLU)' : ''}`);
  const weights = [...report.weights].sort((a, b) => a.weightSqnrDb - b.weightSqnrDb).slice(0, 5);
  lines.push(`lowest weight SQNR: ${weights.map((weight) => `${weight.conv} ${weight.weightSqnrDb.toFixed(1)} dB`).join(', ')}`);
  for (const entry of report.agreement) {
    lines.push(
      `agreement on ${entry.frames} held-out frames of ${entry.source}: precision ${entry.precision.toFixed(3)}, recall ${entry.recall.toFixed(3)}, same type ${entry.typeAgreement.toFixed(3)} (${entry.matched} vehicles matched, ${entry.sameType} of the same type; float ${entry.floatDetections}, int8 ${entry.int8Detections})`,
    );
  }
  if (report.speed) {
    for (const [threads, ratio] of Object.entries(report.speed.medianRatio)) {
      const rounds = report.speed.rounds.filter((entry) => String(entry.threads) === threads);
      lines.push(
        `speed at ${threads} thread(s): int8/float ${ratio.toFixed(2)} (median of ${rounds.length}; ${rounds.map((entry) => `${entry.floatFps.toFixed(0)} vs ${entry.int8Fps.toFixed(0)} fps`).join(', ')})`,
      );
    }
    lines.push(`speed limited by: ${report.speed.limits}`);
  }
  if (report.sensitivity) {
    lines.push('most sensitive layers (output SQNR with only that layer quantized):');
    for (const entry of report.sensitivity.slice(0, 12)) lines.push(`  ${entry.outputSqnrDb.toFixed(1).padStart(6)} dB  ${entry.layer}`);
  }
  return `${lines.join('\n')}\n`;
}
