import { readFileSync } from 'node:fs';
import path from 'node:path';
import { runAssetsCommand } from '../cli/assets-command.js';
import { bundledFfmpegPath } from '../ingest/ffmpeg-binary.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { packageRoot } from '../paths.js';
import { configCommand } from './config-command.js';
import { processIo, type CliIo } from './io.js';
import { runCommand } from './run-command.js';
import { statusCommand } from './status-command.js';
import { telemetryCommand } from './telemetry-command.js';

const HELP = `cctv-agent: edge inference agent for highway CCTV

usage: cctv-agent <command> [options]

  run [--config FILE]          run the agent (config: --config, $CCTV_CONFIG, ./cctv-agent.yaml, /etc/cctv-agent/config.yaml)
  demo [--config FILE]         run on the bundled highway clip with an embedded MQTT broker
  status [--config FILE | --data-dir DIR] [--json]
                               a running agent's cameras, model, outbox and errors (no broker needed)
  telemetry [--since 1h] [--until T] [--camera ID] [--bucket 5m] [--json] [--follow]
            [--config FILE | --data-dir DIR]
                               the local telemetry log, read-only: latest sample, min/median/max,
                               vehicles per type, events, charts (running or stopped agent)
  monitor [--since 6h] [--json] [--config FILE | --data-dir DIR]
                               measured precision per camera and model, drift, alerts, retrain requests
  monitor reference reset [--camera ID] [--config FILE | --data-dir DIR]
                               forget the drift reference (a camera moved on purpose): captured again
  counts [--since 1h] [--camera ID] [--bucket 15m] [--json | --csv] [--config FILE | --data-dir DIR]
                               vehicles counted per line, direction and type (docs/counting.md)
  camera snapshot ID --lines OUT.jpg [--config FILE]
                               a full-resolution frame of the camera with its counting lines drawn
  feedback send FILE [--device ID | --fleet] [--broker URL]
                               send a reviewer's verdicts (JSON, JSON lines or CSV) to an agent
  evidence list [--camera ID] [--reason R] [--disputed] [--json] [--config FILE | --data-dir DIR]
                               the evidence samples held (JPEG + detections) for retraining
  evidence export DIR --format coco|yolo [--config FILE | --data-dir DIR]
                               write the evidence as a COCO or YOLO dataset, feedback applied
  config check [FILE]          validate a config file (exit 2 with one line per problem)
  config print [--config FILE] print the effective config, secrets redacted
  config keys                  print every config key with its environment variable and default
  assets fetch [names...]      fetch models and clips from models/catalog.json (mirror: $CCTV_ASSET_MIRROR)
  assets list                  list the catalog and what is present
  model quantize --model F --out F (--images DIR | --video F | --camera ID --config F) [...]
                               int8 post-training quantization calibrated on the camera's frames (docs/quantization.md)
  model layers FILE            list a model's conv layers (names for --keep-float)
  model run IMAGE... [--model ID] [--json]
                               the active (or named) model on still images, as the live pipeline runs it
  model keygen | pack | sign | verify
                               signing keys and signed model bundles (docs/model-updates.md)
  model push BUNDLE (--device ID | --fleet) | model pull URL ...
                               send a bundle to agents over MQTT, or have them download it over HTTP(S)
  model list | history | activate ID VERSION | rollback
                               the agent's model registry, its audit log, activation and rollback
  version                      print the version

Environment overrides: CCTV_<KEY_PATH>, e.g. CCTV_MQTT__URL, CCTV_CAMERAS__0__URL. See docs/configuration.md.
`;

export async function main(argv: string[], io: CliIo = processIo): Promise<number | 'running'> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
    case 'demo':
      return runCommand(rest, io, command);
    case 'config':
      return configCommand(rest, io);
    case 'status':
      return statusCommand(rest, io);
    case 'telemetry':
      return telemetryCommand(rest, io);
    case 'assets':
      return runAssetsCommand(rest, {
        ...io,
        // The bundled build, so a derived clip or frame has the same bytes on every machine.
        ffmpegPath: bundledFfmpegPath(),
        // Loaded on demand: the quantizer (protobuf, onnx graph code) stays out of the daemon.
        derive: async (destDir, progress) => (await import('../quantize/derive-default.js')).deriveDefaultModels(destDir, progress),
      });
    case 'monitor':
      return (await import('./monitor-command.js')).monitorCommand(rest, io);
    case 'feedback':
      return (await import('./feedback-command.js')).feedbackCommand(rest, io);
    // counting (issue #18)
    case 'counts':
      return (await import('./counts-command.js')).countsCommand(rest, io);
    case 'camera':
      return (await import('./camera-command.js')).cameraCommand(rest, io);
    // evidence samples (issue #15)
    case 'evidence':
      return (await import('./evidence-command.js')).evidenceCommand(rest, io);
    case 'model':
      return (await import('./model-command.js')).modelCommand(rest, io);
    case 'version':
    case '--version': {
      const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
      io.out.write(`${pkg.version}\n`);
      return ExitCode.OK;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.out.write(HELP);
      return command === undefined ? ExitCode.CONFIG : ExitCode.OK;
    default:
      io.err.write(`cctv-agent: USAGE: unknown command "${command}"\n${HELP}`);
      return ExitCode.CONFIG;
  }
}
