import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { AgentError } from '../errors.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { auditSummary, versionSummary } from '../models/model-commands.js';
import { RegistryStore } from '../models/registry-store.js';
import { TelemetryReader } from '../telemetry/telemetry-reader.js';
import { locateDatabase } from './database-location.js';
import type { CliIo } from './io.js';
import { commandTarget, sendCommand } from './mqtt-request.js';
import { tableLines } from './table.js';

export const MODEL_REGISTRY_USAGE = `  cctv-agent model list [--json] [--config FILE | --data-dir DIR]      the registry: every version and its state
  cctv-agent model history [--update ID] [--limit N] [--json] [--config FILE | --data-dir DIR]
                                                     the audit log of model updates, newest first
  cctv-agent model activate ID VERSION [--rollback] [--device ID] [--broker URL] [--config FILE] [--json]
  cctv-agent model rollback [--device ID] [--broker URL] [--config FILE] [--json]
`;

function openRegistry(
  values: { config?: string | undefined; 'data-dir'?: string | undefined },
  io: CliIo,
): { store: RegistryStore; close: () => void; file: string } {
  const location = locateDatabase({ config: values.config, dataDir: values['data-dir'] }, io.env);
  const reader = TelemetryReader.open(location.file)!;
  if (reader.schemaVersion < 4) {
    reader.close();
    throw new AgentError(
      'STORAGE_READ_FAILED',
      `${location.file} is from an agent without model updates (schema ${reader.schemaVersion}): start the current agent once to migrate it`,
    );
  }
  return { store: new RegistryStore(reader.database), close: () => reader.close(), file: location.file };
}

const readOptions = { json: { type: 'boolean' }, config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string' } } as const;

function list(argv: string[], io: CliIo): number {
  const { values } = parseArgs({ args: argv, strict: true, options: readOptions });
  const registry = openRegistry(values, io);
  try {
    const versions = registry.store.list().map(versionSummary);
    if (values.json) io.out.write(`${JSON.stringify({ file: registry.file, versions }, null, 2)}\n`);
    else {
      const rows = [['MODEL', 'VERSION', 'STATE', 'SOURCE', 'KEY', 'BYTES', 'SINCE', 'ERROR']];
      for (const v of versions)
        rows.push([v.id, v.version, v.state, v.source, v.keyId ?? '-', v.bytes === null ? '-' : String(v.bytes), v.stateAt, v.errorCode ?? '']);
      io.out.write(`${tableLines(rows, { indent: '' }).join('\n')}\n`);
    }
    return ExitCode.OK;
  } finally {
    registry.close();
  }
}

function history(argv: string[], io: CliIo): number {
  const { values } = parseArgs({ args: argv, strict: true, options: { ...readOptions, update: { type: 'string' }, limit: { type: 'string' } } });
  const limit = Number(values.limit ?? 50);
  if (!Number.isInteger(limit) || limit < 1) throw new AgentError('USAGE', `--limit must be a positive integer, got ${values.limit}`);
  const registry = openRegistry(values, io);
  try {
    const entries = (values.update ? registry.store.chain(values.update) : registry.store.history(limit)).map(auditSummary);
    if (values.json) io.out.write(`${JSON.stringify({ file: registry.file, entries }, null, 2)}\n`);
    else {
      const rows = [['AT', 'UPDATE', 'MODEL', 'STEP', 'TRIGGER', 'OUTCOME', 'CODE', 'DETAIL']];
      for (const e of entries)
        rows.push([
          e.at,
          e.updateId.slice(0, 8),
          e.modelId ? `${e.modelId}@${e.version}` : '-',
          e.step,
          e.trigger,
          e.outcome,
          e.code ?? '',
          e.detail ? JSON.stringify(e.detail).slice(0, 120) : '',
        ]);
      io.out.write(`${tableLines(rows, { indent: '' }).join('\n')}\n`);
    }
    return ExitCode.OK;
  } finally {
    registry.close();
  }
}

/** activate and rollback act on the running agent: they go to it as commands over MQTT. */
async function remote(subcommand: 'activate' | 'rollback', argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      device: { type: 'string' },
      broker: { type: 'string' },
      config: { type: 'string', short: 'c' },
      rollback: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const { config } = loadConfig({ ...(values.config ? { file: values.config } : {}), env: io.env });
  const target = commandTarget(config, { broker: values.broker, device: values.device });
  let name = 'model-rollback';
  let args: Record<string, unknown> = {};
  if (subcommand === 'activate') {
    const [modelId, version] = positionals;
    if (!modelId || !version) throw new AgentError('USAGE', 'model activate needs ID VERSION (see `cctv-agent model list`)');
    name = 'model-activate';
    args = { modelId, version, rollback: values.rollback === true };
  }
  const [reply] = await sendCommand(target, name, args, { timeoutMs: 60_000 });
  if (!reply?.ok) throw new AgentError(reply?.code ?? 'COMMAND_FAILED', reply?.message ?? 'refused');
  const result = reply.result as { id: string; version: string; state: string };
  io.out.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : `${target.deviceId}: ${result.id}@${result.version} is ${result.state}\n`);
  return ExitCode.OK;
}

export async function modelRegistryCommand(subcommand: string, argv: string[], io: CliIo): Promise<number> {
  switch (subcommand) {
    case 'list':
      return list(argv, io);
    case 'history':
      return history(argv, io);
    case 'activate':
      return remote('activate', argv, io);
    default:
      return remote('rollback', argv, io);
  }
}
