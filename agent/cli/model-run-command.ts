import path from 'node:path';
import { parseArgs } from 'node:util';
import { findConfigFile, loadConfig } from '../config/load.js';
import { type AgentConfig, inferenceSchema, type InferenceConfig } from '../config/schema.js';
import { AgentError } from '../errors.js';
import { LoadedModel } from '../inference/loaded-model.js';
import { findManifestById, resolveConfiguredModel, resolveModel, type ResolvedModel } from '../inference/model-files.js';
import { chooseFfmpeg, probeFfmpeg } from '../ingest/ffmpeg-binary.js';
import { readStillFrame } from '../ingest/still-frame.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import type { CliIo } from './io.js';
import { readAgentState } from './telemetry-command.js';
import type { ModelRunOutput } from './model-run-output.js';
import { formatTable } from './table.js';

export const MODEL_RUN_USAGE = `usage:
  cctv-agent model run IMAGE... [--model ID | --manifest FILE] [--config FILE] [--json]

Runs a model on still images (or a video's first frame) through the live pipeline's own
ffmpeg filter chain, preprocessing, decoding and suppression, and prints each image's
vehicles: type, score, runner-up type and box.
  --model ID        a model by manifest id (shipped, or derived on this machine)
  --manifest FILE   a model by manifest file
  --config FILE     the model, thresholds and ffmpeg of that config (default: the config
                    the agent would find; without one, model "auto" and default settings).
                    With model "auto", the model the running agent of that config serves
                    (it times int8 against float at start), else int8 when present
  --json            one JSON document (schema: docs/cli.md)
`;

interface Choice {
  model: ResolvedModel;
  inference: InferenceConfig;
  ffmpegPath: string | undefined;
}

/** The named model, else the configured one, with the config's inference settings when a config exists. */
function chooseModel(values: { model?: string; manifest?: string; config?: string }, env: NodeJS.ProcessEnv): Choice {
  const configFile = findConfigFile({ ...(values.config ? { file: values.config } : {}), env, requireFile: false });
  const loaded = configFile === undefined ? undefined : loadConfig({ file: configFile, env });
  const assetsDir = loaded?.config.model.assetsDir;
  let model: ResolvedModel;
  if (values.manifest !== undefined) {
    model = resolveModel(values.manifest, ...(assetsDir ? [assetsDir] : []));
  } else if (values.model !== undefined) {
    const file = findManifestById(values.model, ...(assetsDir ? [assetsDir] : []));
    if (file === undefined) throw new AgentError('MODEL_NOT_FOUND', `no manifest with id "${values.model}" among the shipped and installed models`);
    model = resolveModel(file, ...(assetsDir ? [assetsDir] : []));
  } else {
    model = servingModel(loaded?.config) ?? resolveConfiguredModel(loaded?.config.model.manifest ?? 'auto', ...(assetsDir ? [assetsDir] : []));
  }
  return { model, inference: loaded?.config.inference ?? inferenceSchema.parse(undefined), ffmpegPath: loaded?.config.ffmpeg.path };
}

/**
 * With model "auto", the model a running agent of this config serves (it may have timed float
 * faster than int8 on this CPU, or an update may have made another version active): the one
 * its status.json names. Undefined when no agent runs there or its manifest is not found.
 */
function servingModel(config: AgentConfig | undefined): ResolvedModel | undefined {
  if (config?.model.manifest !== 'auto') return undefined;
  const { state, model: serving } = readAgentState(path.resolve(config.dataDir), Date.now());
  if (state !== 'running' || !serving) return undefined;
  const assetsDir = config.model.assetsDir;
  const file = findManifestById(serving.id, ...(assetsDir ? [assetsDir] : []));
  if (!file) return undefined;
  const resolved = resolveModel(file, ...(assetsDir ? [assetsDir] : []));
  return resolved.manifest.version === serving.version ? resolved : undefined;
}

/** Runs the model on each image; the result is what `--json` prints. */
export async function runModelOnImages(images: string[], choice: Choice): Promise<ModelRunOutput> {
  const ffmpeg = await probeFfmpeg(chooseFfmpeg(choice.ffmpegPath).path);
  // One-off runs: a configured thread count, else onnxruntime's former default of 2 (no timing for a few images).
  const threads = choice.inference.intraOpThreads === 'auto' ? 2 : choice.inference.intraOpThreads;
  const loaded = await LoadedModel.load(choice.model, { ...choice.inference, intraOpThreads: threads, sessions: 1 });
  try {
    const { manifest } = choice.model;
    const detector = manifest.task === 'detection' ? manifest.output : undefined;
    const output: ModelRunOutput = {
      model: {
        id: manifest.id,
        version: manifest.version,
        file: choice.model.modelPath,
        scoreThreshold: detector ? (choice.inference.scoreThreshold ?? detector.scoreThreshold) : null,
        nms: detector ? detector.nms : null,
      },
      images: [],
    };
    for (const [seq, file] of images.entries()) {
      const frame = await readStillFrame(file, loaded.geometry, ffmpeg, 'model-run');
      frame.seq = seq;
      const result = await loaded.infer(frame);
      output.images.push({
        file,
        width: frame.sourceWidth,
        height: frame.sourceHeight,
        inferenceMs: result.inferenceMs,
        vehicles: result.vehicles,
        ...(result.top ? { top: result.top } : {}),
      });
    }
    return output;
  } finally {
    await loaded.release();
  }
}

function formatText(output: ModelRunOutput): string {
  const { model } = output;
  const lines = [
    `model ${model.id}@${model.version} (${model.file})${model.scoreThreshold === null ? '' : `, score threshold ${model.scoreThreshold}, nms ${model.nms}`}`,
  ];
  for (const image of output.images) {
    lines.push('', `${path.basename(image.file)} (${image.width}x${image.height}): ${image.vehicles.length} vehicle(s), ${image.inferenceMs.toFixed(1)} ms`);
    if (image.vehicles.length > 0) {
      lines.push(
        formatTable([
          ['#', 'type', 'score', 'runner-up', 'box x', 'y', 'w', 'h'],
          ...image.vehicles.map((vehicle, index) => [
            String(index + 1),
            vehicle.type,
            vehicle.score.toFixed(3),
            vehicle.runnerUp ? `${vehicle.runnerUp.type} ${vehicle.runnerUp.score.toFixed(3)}` : '-',
            ...vehicle.box.map((value) => value.toFixed(3)),
          ]),
        ]).trimEnd(),
      );
    }
    for (const entry of image.top ?? []) lines.push(`  ${entry.label}${entry.type ? ` (${entry.type})` : ''} ${entry.score.toFixed(3)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `cctv-agent model run IMAGE... [--model ID | --manifest FILE] [--config FILE] [--json]`. */
export async function modelRunCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.out.write(MODEL_RUN_USAGE);
    return ExitCode.OK;
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: { model: { type: 'string' }, manifest: { type: 'string' }, config: { type: 'string', short: 'c' }, json: { type: 'boolean' } },
  });
  if (positionals.length === 0) throw new AgentError('USAGE', `model run needs at least one image\n${MODEL_RUN_USAGE}`);
  if (values.model !== undefined && values.manifest !== undefined) throw new AgentError('USAGE', 'give --model or --manifest, not both');
  const output = await runModelOnImages(positionals, chooseModel(values, io.env));
  io.out.write(values.json ? `${JSON.stringify(output, null, 2)}\n` : formatText(output));
  return ExitCode.OK;
}
