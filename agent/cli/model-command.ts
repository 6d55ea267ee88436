import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AgentError, errorMessage, isAgentError } from '../errors.js';
import { resolveModel } from '../inference/model-files.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { manifestsDir } from '../paths.js';
import type { CalibrationSource } from '../quantize/calibration-source.js';
import { quantizableConvs } from '../quantize/graph.js';
import { DEFAULT_OPTIONS, prepareModel } from '../quantize/quantize.js';
import { runQuantizeJob } from '../quantize/run.js';
import type { CliIo } from './io.js';
import { MODEL_BUNDLE_USAGE } from './model-bundle-command.js';
import { MODEL_PULL_USAGE } from './model-pull-command.js';
import { MODEL_PUSH_USAGE } from './model-push-command.js';
import { MODEL_REGISTRY_USAGE } from './model-registry-command.js';

export const MODEL_USAGE = `usage:
  cctv-agent model quantize --model FLOAT.onnx --out INT8.onnx SOURCE [options]
  cctv-agent model layers FLOAT.onnx
  cctv-agent model run IMAGE... [--model ID | --manifest FILE] [--config FILE] [--json]
model bundles and updates (docs/model-updates.md):
${MODEL_BUNDLE_USAGE}${MODEL_PUSH_USAGE}${MODEL_PULL_USAGE}${MODEL_REGISTRY_USAGE}
SOURCE (calibration frames, made by ffmpeg exactly as the agent makes them):
  --images DIR                 every .jpg/.png/.bmp/.webp in DIR, by name
  --video FILE [--seconds even|odd|all] [--fps N]
  --camera ID --config FILE    a configured camera (live sources are read until --frames arrive)
options:
  --manifest FILE      the float model's manifest (input size, preprocessing; default models/manifests/yolox-nano.json)
  --frames N           calibration frames (default 60)
  --keep-float A,B     conv layers kept float, by node name (see \`model layers\`)
  --sweep N            run the sensitivity sweep and also keep its N worst layers float
  --silu qlinear|float QLinearSigmoid + QLinearMul (default: measured faster), or SiLU kept float between DQ and Q
  --weight-bits 8|7    7 avoids u8s8 saturation on AVX2 machines without VNNI, at some accuracy
  --no-bias-correction
  --evaluate FILE[:even|odd|all]  held-out video for the agreement check (repeatable)
  --speed              measure int8/float frames/s at 1 and 2 threads (3 rounds of 3 s)
  --report FILE        write the report as JSON (default: OUT with .report.json)
  --json               print the report as JSON instead of text
`;

function sourceFrom(values: Record<string, string | boolean | string[] | undefined>): CalibrationSource {
  const given = ['images', 'video', 'camera'].filter((key) => values[key] !== undefined);
  if (given.length !== 1) throw new AgentError('USAGE', `give exactly one calibration source: --images, --video or --camera (got ${given.length})`);
  const fps = values['fps'] === undefined ? 4 : Number(values['fps']);
  if (!(fps > 0)) throw new AgentError('USAGE', `--fps must be a positive number, got ${String(values['fps'])}`);
  if (values['images'] !== undefined) return { kind: 'images', dir: String(values['images']) };
  if (values['video'] !== undefined) {
    const seconds = String(values['seconds'] ?? 'all');
    if (seconds !== 'even' && seconds !== 'odd' && seconds !== 'all') throw new AgentError('USAGE', `--seconds must be even, odd or all, got ${seconds}`);
    return { kind: 'video', file: String(values['video']), fps, seconds };
  }
  if (values['config'] === undefined) throw new AgentError('USAGE', '--camera needs --config FILE');
  return { kind: 'camera', cameraId: String(values['camera']), configFile: String(values['config']), fps };
}

function evaluationSource(spec: string): CalibrationSource {
  const match = /^(.*?)(?::(even|odd|all))?$/.exec(spec)!;
  return { kind: 'video', file: match[1]!, fps: 3, seconds: (match[2] as 'even' | 'odd' | 'all' | undefined) ?? 'all' };
}

async function quantize(argv: string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out.write(MODEL_USAGE);
    return ExitCode.OK;
  }
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      model: { type: 'string' },
      out: { type: 'string' },
      manifest: { type: 'string' },
      images: { type: 'string' },
      video: { type: 'string' },
      seconds: { type: 'string' },
      fps: { type: 'string' },
      camera: { type: 'string' },
      config: { type: 'string' },
      frames: { type: 'string' },
      'keep-float': { type: 'string' },
      sweep: { type: 'string' },
      silu: { type: 'string' },
      'weight-bits': { type: 'string' },
      'no-bias-correction': { type: 'boolean' },
      evaluate: { type: 'string', multiple: true },
      speed: { type: 'boolean' },
      report: { type: 'string' },
      json: { type: 'boolean' },
      threads: { type: 'string' },
    },
  });
  if (!values.model || !values.out) throw new AgentError('USAGE', 'model quantize needs --model FLOAT.onnx and --out INT8.onnx');
  const silu = values.silu ?? DEFAULT_OPTIONS.silu;
  if (silu !== 'float' && silu !== 'qlinear') throw new AgentError('USAGE', `--silu must be float or qlinear, got ${silu}`);
  const weightBits = Number(values['weight-bits'] ?? 8);
  if (weightBits !== 7 && weightBits !== 8) throw new AgentError('USAGE', `--weight-bits must be 8 or 7, got ${values['weight-bits']}`);
  const frames = Number(values.frames ?? 60);
  if (!Number.isInteger(frames) || frames < 1) throw new AgentError('USAGE', `--frames must be a positive integer, got ${values.frames}`);
  const manifestPath = values.manifest ?? path.join(manifestsDir(), 'yolox-nano.json');
  if (!fs.existsSync(values.model)) throw new AgentError('QUANTIZE_MODEL_INVALID', `model ${values.model} does not exist`);
  // The manifest's labels file is looked up beside the model as well as in the assets directory.
  const floatModel = { ...resolveModel(manifestPath, path.dirname(path.resolve(values.model))), modelPath: path.resolve(values.model) };
  const { result, text, report } = await runQuantizeJob(
    {
      floatModel,
      output: values.out,
      calibration: sourceFrom(values),
      frames,
      options: {
        ...DEFAULT_OPTIONS,
        keepFloat: (values['keep-float'] ?? '')
          .split(',')
          .map((name) => name.trim())
          .filter((name) => name !== ''),
        silu,
        weightBits,
        biasCorrection: values['no-bias-correction'] !== true,
        threads: Number(values.threads ?? DEFAULT_OPTIONS.threads),
      },
      evaluate: (values.evaluate ?? []).map(evaluationSource),
      speed: values.speed ? { rounds: 3, seconds: 3 } : undefined,
      sweep: Number(values.sweep ?? 0),
      report: values.report ?? `${values.out.replace(/\.onnx$/, '')}.report.json`,
    },
    (line) => io.err.write(`${line}\n`),
  );
  io.out.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : text);
  return result.bytes.length > 0 ? ExitCode.OK : ExitCode.FATAL;
}

function layers(argv: string[], io: CliIo): number {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out.write(MODEL_USAGE);
    return ExitCode.OK;
  }
  const [file] = argv;
  if (!file) throw new AgentError('USAGE', 'model layers needs a model file');
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new AgentError('QUANTIZE_MODEL_INVALID', `model ${file} cannot be read: ${errorMessage(error)}`, { cause: error });
  }
  const { index } = prepareModel(bytes, file);
  for (const node of quantizableConvs(index)) io.out.write(`${node.name}${index.silu.has(node.output[0]!) ? '' : '  (no SiLU after it)'}\n`);
  return ExitCode.OK;
}

/** `cctv-agent model <quantize|layers>`; argv starts after "model". */
export async function modelCommand(argv: string[], io: CliIo): Promise<number> {
  const [subcommand, ...rest] = argv;
  try {
    switch (subcommand) {
      case 'quantize':
        return await quantize(rest, io);
      case 'layers':
        return layers(rest, io);
      case 'run':
        return await (await import('./model-run-command.js')).modelRunCommand(rest, io);
      case 'keygen':
      case 'pack':
      case 'sign':
      case 'verify':
        return await (await import('./model-bundle-command.js')).modelBundleCommand(subcommand, rest, io);
      case 'push':
        return await (await import('./model-push-command.js')).modelPushCommand(rest, io);
      case 'pull':
        return await (await import('./model-pull-command.js')).modelPullCommand(rest, io);
      case 'list':
      case 'history':
      case 'activate':
      case 'rollback':
        return await (await import('./model-registry-command.js')).modelRegistryCommand(subcommand, rest, io);
      case 'help':
      case '--help':
        io.out.write(MODEL_USAGE);
        return ExitCode.OK;
      default:
        throw new AgentError(
          'USAGE',
          `unknown model command "${subcommand ?? ''}" (expected quantize, layers, run, keygen, pack, sign, verify, push, pull, list, history, activate or rollback)\n${MODEL_USAGE}`,
        );
    }
  } catch (error) {
    if (isAgentError(error)) {
      io.err.write(`cctv-agent: ${error.code}: ${error.message} (fix: ${error.fix})\n`);
      return error.code === 'USAGE' ? ExitCode.CONFIG : ExitCode.FATAL;
    }
    if (error instanceof TypeError && 'code' in error) {
      // node:util parseArgs rejects unknown options with a TypeError carrying an ERR_PARSE_ARGS_* code.
      io.err.write(`cctv-agent: USAGE: ${error.message}\n${MODEL_USAGE}`);
      return ExitCode.CONFIG;
    }
    throw error;
  }
}
