import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { cpuInt8Features, type CpuInt8Features } from '../inference/cpu-features.js';
import { readManifest, resolveModel } from '../inference/model-files.js';
import { manifestsDir } from '../paths.js';
import { DEFAULT_OPTIONS } from './quantize.js';
import { runQuantizeJob, writeAtomically } from './run.js';

/**
 * YOLOX-nano's layers kept float: the stem (the Focus conv and the first depthwise block) and
 * the 9 prediction convs, the ones that quantize worst (quantizing all of them: recall 0.35).
 */
export const YOLOX_NANO_KEEP_FLOAT = [
  'Conv_41',
  'Conv_44',
  'Conv_47',
  'Conv_314',
  'Conv_327',
  'Conv_328',
  'Conv_347',
  'Conv_360',
  'Conv_361',
  'Conv_380',
  'Conv_393',
  'Conv_394',
];

/**
 * Those, plus the five next-worst convs by the sensitivity sweep (`--sweep 8` on the demo clip's
 * even seconds ranked Conv_41, 44, 47, then 70, 67, 73, 119, 56): the list that, with the
 * calibrated score threshold, reaches the 0.95 agreement (test/quantize/quantize.test.ts).
 */
export const YOLOX_NANO_KEEP_FLOAT_SWEPT = [...YOLOX_NANO_KEEP_FLOAT, 'Conv_70', 'Conv_67', 'Conv_73', 'Conv_119', 'Conv_56'];

export const CATALOG_INT8 = 'yolox-nano-int8.onnx';
export const LOCAL_INT8 = 'yolox-nano-int8-local.onnx';
/** The derived model's manifest, written beside it with this machine's calibrated threshold. */
export const LOCAL_INT8_MANIFEST = 'yolox-nano-int8-local.json';
const FLOAT_MANIFEST = 'yolox-nano.json';
const CALIBRATION_CLIP = 'highway-cctv-320x240.mp4';
const CALIBRATION_FRAMES = 60;

/** What a derived model was made from, written beside it: its sha256 depends on this machine. */
export interface Provenance {
  madeBy: 'cctv-agent model quantize';
  input: { file: string; sha256: string };
  calibration: { file: string; sha256: string; seconds: 'even'; fps: number; frames: number };
  keepFloat: string[];
  /**
   * The int8 score threshold calibrated on the same frames, on this machine: the derived manifest
   * beside the model carries it. It differs by CPU (AVX2 and VNNI int8 kernels round differently).
   */
  scoreThreshold: number | null;
  /** The detection counts behind that threshold (calibration frames). */
  thresholdCalibration: { floatThreshold: number; floatDetections: number; int8Detections: number } | null;
  /** The CPU the calibration ran on: its int8 path decides the threshold found. */
  cpu: CpuInt8Features;
  output: { file: string; sha256: string; bytes: number };
}

function sha256Of(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export function provenanceFile(destDir: string): string {
  return path.join(destDir, `${LOCAL_INT8}.provenance.json`);
}

export function derivedManifestFile(destDir: string): string {
  return path.join(destDir, LOCAL_INT8_MANIFEST);
}

/** Is the derived model there, with its manifest, and made from the float model and clip present now? */
function upToDate(destDir: string, floatSha: string, clipSha: string): boolean {
  const model = path.join(destDir, LOCAL_INT8);
  if (!fs.existsSync(model) || !fs.existsSync(provenanceFile(destDir)) || !fs.existsSync(derivedManifestFile(destDir))) return false;
  const provenance = JSON.parse(fs.readFileSync(provenanceFile(destDir), 'utf8')) as Provenance;
  return provenance.input.sha256 === floatSha && provenance.calibration.sha256 === clipSha && provenance.output.sha256 === sha256Of(model);
}

/**
 * The asset fetch's last step on a machine without the catalogued int8 model (no mirror, and it
 * has no upstream): makes `yolox-nano-int8-local.onnx` from the upstream float model, calibrated
 * on the demo clip's even seconds, so the default job runs quantized anyway. Returns the lines
 * to print; does nothing when the catalogued int8 model or an up-to-date derived one is there.
 */
export async function deriveDefaultModels(destDir: string, progress: (line: string) => void): Promise<string[]> {
  if (fs.existsSync(path.join(destDir, CATALOG_INT8))) return [];
  const floatModelPath = path.join(destDir, 'yolox-nano.onnx');
  const clip = path.join(destDir, CALIBRATION_CLIP);
  if (!fs.existsSync(floatModelPath) || !fs.existsSync(clip)) {
    return [`derive: ${LOCAL_INT8} not made: it needs yolox-nano.onnx and ${CALIBRATION_CLIP} in ${destDir}`];
  }
  const floatSha = sha256Of(floatModelPath);
  const clipSha = sha256Of(clip);
  if (upToDate(destDir, floatSha, clipSha)) return [`  ${LOCAL_INT8}  ok (derived earlier from the same inputs)`];

  const output = path.join(destDir, LOCAL_INT8);
  progress(`derive: making ${LOCAL_INT8} from yolox-nano.onnx, calibrated on ${CALIBRATION_FRAMES} frames of ${CALIBRATION_CLIP} (about a minute)`);
  const fps = 4;
  const { result, threshold } = await runQuantizeJob(
    {
      floatModel: resolveModel(path.join(manifestsDir(), FLOAT_MANIFEST), destDir),
      output,
      calibration: { kind: 'video', file: clip, fps, seconds: 'even' },
      frames: CALIBRATION_FRAMES,
      options: { ...DEFAULT_OPTIONS, keepFloat: YOLOX_NANO_KEEP_FLOAT_SWEPT },
      evaluate: [],
      speed: undefined,
      sweep: 0,
      report: path.join(destDir, `${LOCAL_INT8}.report.json`),
    },
    progress,
  );
  const provenance: Provenance = {
    madeBy: 'cctv-agent model quantize',
    input: { file: 'yolox-nano.onnx', sha256: floatSha },
    calibration: { file: CALIBRATION_CLIP, sha256: clipSha, seconds: 'even', fps, frames: CALIBRATION_FRAMES },
    keepFloat: YOLOX_NANO_KEEP_FLOAT_SWEPT,
    scoreThreshold: threshold?.int8Threshold ?? null,
    thresholdCalibration: threshold
      ? { floatThreshold: threshold.floatThreshold, floatDetections: threshold.floatDetections, int8Detections: threshold.int8DetectionsAtInt8Threshold }
      : null,
    cpu: cpuInt8Features(),
    output: { file: LOCAL_INT8, sha256: createHash('sha256').update(result.bytes).digest('hex'), bytes: result.bytes.length },
  };
  writeAtomically(provenanceFile(destDir), `${JSON.stringify(provenance, null, 2)}\n`);
  writeAtomically(derivedManifestFile(destDir), `${JSON.stringify(derivedManifest(provenance), null, 2)}\n`);
  const thresholdNote =
    provenance.scoreThreshold === null ? '' : `, score threshold ${provenance.scoreThreshold} calibrated on this CPU (${provenance.cpu.int8Path})`;
  return [`  ${LOCAL_INT8}  ok (derived: ${result.bytes.length} bytes, sha256 ${provenance.output.sha256.slice(0, 12)}…${thresholdNote})`];
}

/**
 * The shipped template (models/manifests/yolox-nano-int8-local.json) with what this derivation
 * found: the calibrated score threshold and the file's sha256 (checked at load).
 */
function derivedManifest(provenance: Provenance): unknown {
  const templateFile = path.join(manifestsDir(), LOCAL_INT8_MANIFEST);
  const template = readManifest(templateFile);
  if (template.task !== 'detection') throw new Error(`${templateFile} must describe a detector`);
  const raw = JSON.parse(fs.readFileSync(templateFile, 'utf8')) as Record<string, unknown> & { output: Record<string, unknown> };
  return {
    ...raw,
    description: `YOLOX-nano (COCO-80), int8 QDQ made on this machine by \`cctv-agent assets fetch\` from yolox-nano.onnx (sha256 ${provenance.input.sha256.slice(0, 12)}…), calibrated on ${provenance.calibration.frames} frames of ${provenance.calibration.file}; score threshold calibrated on this CPU (${provenance.cpu.int8Path}). Provenance: ${LOCAL_INT8}.provenance.json.`,
    sha256: provenance.output.sha256,
    output: { ...raw.output, scoreThreshold: provenance.scoreThreshold ?? template.output.scoreThreshold },
  };
}
