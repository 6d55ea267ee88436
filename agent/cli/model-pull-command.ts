import fs from 'node:fs';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { sha256File } from '../common/checksum.js';
import { loadConfig } from '../config/load.js';
import { AgentError, type ErrorCode, errorFixes, errorMessage } from '../errors.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import type { ModelStatePayload } from '../models/model-schemas.js';
import type { CliIo } from './io.js';
import { commandTarget, sendCommand } from './mqtt-request.js';

export const MODEL_PULL_USAGE = `  cctv-agent model pull URL (--size N --sha256 HEX | --bundle LOCAL.tar) [--device ID] [--no-activate]
                       [--broker URL] [--config FILE] [--timeout SECONDS] [--json]
                                                     the device downloads the bundle itself (Range resume);
                                                     a progress bar follows its retained model state
`;

function bar(fraction: number, width = 24): string {
  const full = Math.round(Math.min(1, Math.max(0, fraction)) * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}]`;
}

/** `model pull`: asks a device to download a bundle, and follows the download and its outcome. */
export async function modelPullCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      size: { type: 'string' },
      sha256: { type: 'string' },
      bundle: { type: 'string' },
      device: { type: 'string' },
      broker: { type: 'string' },
      config: { type: 'string', short: 'c' },
      timeout: { type: 'string' },
      'no-activate': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const [url] = positionals;
  if (!url) throw new AgentError('USAGE', 'model pull needs the URL the device downloads the bundle from');
  let size = Number(values.size);
  let sha256 = values.sha256;
  if (values.bundle) {
    size = fs.statSync(values.bundle).size;
    sha256 = await sha256File(values.bundle);
  }
  if (!Number.isInteger(size) || size <= 0 || !sha256)
    throw new AgentError('USAGE', 'give --size and --sha256 of the bundle, or --bundle LOCAL.tar to read them from a local copy');
  const timeoutMs = Number(values.timeout ?? 600) * 1000;
  const { config } = loadConfig({ ...(values.config ? { file: values.config } : {}), env: io.env });
  const target = commandTarget(config, { broker: values.broker, device: values.device });
  let client: mqtt.MqttClient;
  try {
    client = await mqtt.connectAsync(target.url, target.options);
  } catch (error) {
    throw new AgentError('MQTT_CONNECT_FAILED', `cannot reach the broker ${target.url}: ${errorMessage(error)}`, { cause: error });
  }
  try {
    let latest: ModelStatePayload | undefined;
    client.on('message', (_topic, payload) => {
      if (payload.length > 0) latest = JSON.parse(payload.toString()) as ModelStatePayload;
    });
    await client.subscribeAsync(`${target.prefix}/${target.deviceId}/model/state`, { qos: 1 });
    const [reply] = await sendCommand(target, 'model-pull', { url, size, sha256, activate: values['no-activate'] !== true });
    if (!reply?.ok) {
      const code = (reply?.code && reply.code in errorFixes ? reply.code : 'COMMAND_FAILED') as ErrorCode;
      throw new AgentError(code, `${target.deviceId}: ${reply?.message ?? 'refused'}`);
    }
    const { transferId, updateId } = reply.result as { transferId: string; updateId: string };
    const deadline = Date.now() + timeoutMs;
    const wanted = values['no-activate'] === true ? 'verified' : 'activated';
    let lastDraw = 0;
    let lastCheck = 0;
    for (;;) {
      const transfer = latest?.inFlight.find((entry) => entry.transferId === transferId);
      if (!values.json && transfer && Date.now() - lastDraw > 200) {
        lastDraw = Date.now();
        const line = `${target.deviceId} ${bar(transfer.bytes / transfer.size)} ${Math.round((transfer.bytes / transfer.size) * 100)}%`;
        io.err.write(io.err.isTTY ? `\r${line}` : `${line}\n`);
      }
      if (Date.now() - lastCheck > 1000) {
        lastCheck = Date.now();
        // The update's own chain in the audit log says when it is over, and how.
        const [history] = await sendCommand(target, 'model-history', { updateId });
        const entries = history?.ok
          ? (
              history.result as {
                entries: Array<{ step: string; outcome: string; code: string | null; version: string | null; detail: Record<string, unknown> | null }>;
              }
            ).entries
          : [];
        const failure = entries.find((entry) => entry.outcome === 'refused' || (entry.outcome === 'failed' && entry.step !== 'download-interrupted'));
        if (failure) {
          const code = (failure.code && failure.code in errorFixes ? failure.code : 'COMMAND_FAILED') as ErrorCode;
          throw new AgentError(code, `${target.deviceId}: ${String(failure.detail?.['message'] ?? failure.step)}`);
        }
        const done = entries.find((entry) => entry.step === wanted);
        if (done) {
          if (!values.json && io.err.isTTY) io.err.write('\n');
          io.out.write(
            values.json
              ? `${JSON.stringify({ deviceId: target.deviceId, transferId, updateId, state: wanted === 'activated' ? 'active' : 'verified', version: done.version }, null, 2)}\n`
              : `${target.deviceId}: version ${done.version} ${wanted === 'activated' ? 'active' : 'verified'}\n`,
          );
          return ExitCode.OK;
        }
      }
      if (Date.now() > deadline)
        throw new AgentError('MODEL_PULL_TIMEOUT', `${target.deviceId}: no outcome within ${timeoutMs / 1000} s (see the retained model state)`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    await client.endAsync(true);
  }
}
