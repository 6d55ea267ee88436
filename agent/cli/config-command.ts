import path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { ConfigError, loadConfig, type LoadOptions } from '../config/load.js';
import { configKeysMarkdown } from '../config/describe.js';
import { redactConfig } from '../config/redact.js';
import { checkReferencedFiles } from '../config/references.js';
import { configSchema } from '../config/schema.js';
import { resolveConfiguredModel, type ResolvedModel } from '../inference/model-files.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { errorLines } from '../errors.js';
import type { CliIo } from './io.js';

/** Everything `run` would reject before starting: schema, secrets, referenced files, model. */
export function loadAndCheck(options: LoadOptions): ReturnType<typeof loadConfig> & { model: ResolvedModel; modelId: string } {
  const loaded = loadConfig(options);
  const problems = checkReferencedFiles(loaded.config);
  if (problems.length > 0) throw new ConfigError('CONFIG_INVALID', problems);
  const model = resolveConfiguredModel(loaded.config.model.manifest, loaded.config.model.assetsDir);
  return { ...loaded, model, modelId: `${model.manifest.id}@${model.manifest.version}` };
}

export async function configCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } },
  });
  const [action, file] = positionals;
  try {
    if (action === 'check') {
      const configFile = file ?? values.config;
      const loaded = loadAndCheck({ ...(configFile ? { file: configFile } : {}), env: io.env });
      io.out.write(
        `ok: ${loaded.source ?? '(defaults)'}: ${loaded.config.cameras.length} camera(s), model ${loaded.modelId}, data ${path.resolve(loaded.config.dataDir)}\n`,
      );
      return ExitCode.OK;
    }
    if (action === 'print') {
      const loaded = loadConfig({ ...(values.config ? { file: values.config } : {}), env: io.env });
      const redacted = redactConfig(loaded.config, configSchema);
      io.out.write(
        values.json
          ? `${JSON.stringify(redacted, null, 2)}\n`
          : `# effective config (secrets redacted) from ${loaded.source ?? 'defaults'}\n${YAML.stringify(redacted)}`,
      );
      return ExitCode.OK;
    }
    if (action === 'keys') {
      io.out.write(`${configKeysMarkdown(configSchema)}\n`);
      return ExitCode.OK;
    }
    io.err.write('usage: cctv-agent config check [FILE] | config print [--config FILE] [--json] | config keys\n');
    return ExitCode.CONFIG;
  } catch (error) {
    for (const line of errorLines(error)) io.err.write(`${line}\n`);
    return ExitCode.CONFIG;
  }
}
