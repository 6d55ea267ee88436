import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { loadConfig } from '../config/load.js';
import { AgentError, errorMessage } from '../errors.js';
import { extractBundle } from '../models/bundle-files.js';
import type { ModelStatePayload } from '../models/model-schemas.js';
import { readBundleManifest } from '../models/verify.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { type PushOutcome, pushBundle } from '../models/push-sender.js';
import type { CliIo } from './io.js';
import { commandTarget } from './mqtt-request.js';

export const MODEL_PUSH_USAGE = `  cctv-agent model push BUNDLE.tar (--device ID [--device ID ...] | --fleet) [--broker URL] [--config FILE]
                       [--chunk-size BYTES] [--no-activate] [--json]
                                                     send a bundle over MQTT in acknowledged chunks; each device
                                                     verifies it and activates it; a second push resumes;
                                                     --fleet: every device whose retained model state shows
                                                     the bundle's model (one transfer per device)
`;

/** The bundle's model id, read from its manifest (after the same safe listing a device makes). */
async function bundleModelId(bundle: string): Promise<string> {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-push-'));
  try {
    await extractBundle(bundle, stage, Number.MAX_SAFE_INTEGER);
    return readBundleManifest(stage).id;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/**
 * The fleet's devices running `modelId`, from their retained <prefix>/<deviceId>/model/state,
 * collected for `waitMs`. A device that never published its state (model updates off, or never
 * connected) is not found.
 */
async function fleetDevices(target: ReturnType<typeof commandTarget>, modelId: string, waitMs: number): Promise<string[]> {
  let client: mqtt.MqttClient;
  try {
    client = await mqtt.connectAsync(target.url, target.options);
  } catch (error) {
    throw new AgentError('MQTT_CONNECT_FAILED', `cannot reach the broker ${target.url}: ${errorMessage(error)}`, { cause: error });
  }
  const found = new Set<string>();
  try {
    client.on('message', (_topic, payload) => {
      if (payload.length === 0) return;
      const state = JSON.parse(payload.toString()) as ModelStatePayload;
      if (state.active?.id === modelId) found.add(state.deviceId);
    });
    await client.subscribeAsync(`${target.prefix}/+/model/state`, { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  } finally {
    await client.endAsync(true);
  }
  return [...found].sort();
}

function bar(fraction: number, width = 24): string {
  const full = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

/** `model push`: one bundle to one or more devices, each with its own flow-controlled transfer. */
export async function modelPushCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      device: { type: 'string', multiple: true },
      fleet: { type: 'boolean' },
      broker: { type: 'string' },
      config: { type: 'string', short: 'c' },
      'chunk-size': { type: 'string' },
      'no-activate': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const [bundle] = positionals;
  if (!bundle) throw new AgentError('USAGE', 'model push needs a bundle file (from `cctv-agent model pack`)');
  if (values.fleet && values.device) throw new AgentError('USAGE', 'give --device or --fleet, not both');
  const { config } = loadConfig({ ...(values.config ? { file: values.config } : {}), env: io.env });
  let devices = values.device ?? [config.deviceId];
  if (values.fleet) {
    const modelId = await bundleModelId(bundle);
    devices = await fleetDevices(commandTarget(config, { broker: values.broker }), modelId, 2000);
    if (devices.length === 0) throw new AgentError('COMMAND_FAILED', `no device on the broker publishes a model state running ${modelId}`);
    if (!values.json) io.err.write(`fleet: ${devices.length} device(s) run ${modelId}: ${devices.join(', ')}\n`);
  }
  const chunkSize = Number(values['chunk-size'] ?? config.modelUpdates.push.maxChunkBytes);
  if (!Number.isInteger(chunkSize) || chunkSize < 1024)
    throw new AgentError('USAGE', `--chunk-size must be an integer of at least 1024, got ${values['chunk-size']}`);
  const progress = new Map<string, number>();
  let lastDraw = 0;
  const draw = (force = false): void => {
    if (values.json) return;
    const now = Date.now();
    if (!force && now - lastDraw < 200) return;
    lastDraw = now;
    const line = devices.map((id) => `${id} ${bar(progress.get(id) ?? 0)} ${Math.round((progress.get(id) ?? 0) * 100)}%`).join('  ');
    io.err.write(io.err.isTTY ? `\r${line}` : `${line}\n`);
  };
  const outcomes = await Promise.allSettled(
    devices.map((deviceId) => {
      const target = commandTarget(config, { broker: values.broker, device: deviceId });
      return pushBundle(
        bundle,
        { url: target.url, prefix: target.prefix, deviceId, options: target.options },
        {
          chunkSize,
          activate: values['no-activate'] !== true,
          onProgress: (p) => {
            progress.set(p.deviceId, p.ackedBytes / p.size);
            draw();
          },
        },
      );
    }),
  );
  draw(true);
  if (!values.json && io.err.isTTY) io.err.write('\n');
  let failed = 0;
  const report = outcomes.map((outcome, i) => {
    const deviceId = devices[i]!;
    if (outcome.status === 'rejected') {
      failed++;
      const error = outcome.reason as unknown;
      const code = error instanceof AgentError ? error.code : 'INTERNAL';
      return { deviceId, ok: false, code, message: error instanceof Error ? error.message : String(error) };
    }
    const value: PushOutcome = outcome.value;
    if (!value.result.ok) failed++;
    return {
      deviceId,
      ok: value.result.ok,
      code: value.result.code,
      message: value.result.message,
      model: value.result.model,
      state: value.result.state,
      bytes: value.size,
      sha256: value.sha256,
      chunks: value.chunks,
      chunksSent: value.chunksSent,
      resent: value.resent,
      transferMs: value.transferMs,
      mbPerSecond: value.transferMs > 0 ? value.size / 1048576 / (value.transferMs / 1000) : null,
    };
  });
  if (values.json) io.out.write(`${JSON.stringify({ bundle, devices: report }, null, 2)}\n`);
  else
    for (const entry of report)
      io.out.write(
        entry.ok
          ? `${entry.deviceId}: ${'model' in entry && entry.model ? `${entry.model.id}@${entry.model.version}` : ''} ${'state' in entry ? entry.state : ''} (${'chunksSent' in entry ? `${entry.chunksSent}/${entry.chunks} chunks sent, ${entry.resent} again` : ''})\n`
          : `${entry.deviceId}: REFUSED ${entry.code}: ${entry.message}\n`,
      );
  return failed === 0 ? ExitCode.OK : ExitCode.FATAL;
}
