import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import { AgentError, errorMessage } from '../errors.js';
import { applyEnvOverrides } from './env-overrides.js';
import { formatIssue } from './issues.js';
import { configSchema, type AgentConfig } from './schema.js';

export const DEFAULT_CONFIG_PATHS = ['./cctv-agent.yaml', '/etc/cctv-agent/config.yaml'];

export interface LoadOptions {
  /** --config; wins over CCTV_CONFIG and the search path. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  /** Values laid over the file before the environment (used by `cctv-agent demo`). */
  base?: Record<string, unknown>;
  /** When false, a missing config file is an empty one (the demo runs on defaults). */
  requireFile?: boolean;
}

export interface LoadedConfig {
  config: AgentConfig;
  /** The file read, if any. */
  source: string | undefined;
  envApplied: string[];
  /** Secret values, so the logger can scrub them from every line. */
  secrets: string[];
}

/** A config that cannot run: one problem per line, each naming the key path. */
export class ConfigError extends AgentError {
  declare readonly problems: string[];

  constructor(code: 'CONFIG_INVALID' | 'CONFIG_PARSE' | 'CONFIG_NOT_FOUND' | 'SECRET_UNREADABLE' | 'CONFIG_UNKNOWN_ENV', problems: string[]) {
    super(code, problems.join('; '), { problems });
  }
}

export function findConfigFile(options: LoadOptions): string | undefined {
  const env = options.env ?? process.env;
  const explicit = options.file ?? env['CCTV_CONFIG'];
  if (explicit !== undefined) {
    if (!fs.existsSync(explicit)) throw new ConfigError('CONFIG_NOT_FOUND', [`config file ${explicit} does not exist`]);
    return explicit;
  }
  const found = DEFAULT_CONFIG_PATHS.find((candidate) => fs.existsSync(candidate));
  if (found === undefined && options.requireFile !== false) {
    throw new ConfigError('CONFIG_NOT_FOUND', [`no config file: pass --config FILE or create one of ${DEFAULT_CONFIG_PATHS.join(', ')}`]);
  }
  return found;
}

function readYaml(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError('CONFIG_NOT_FOUND', [`config file ${file} cannot be read: ${errorMessage(error)}`]);
  }
  const lineCounter = new YAML.LineCounter();
  const document = YAML.parseDocument(text, { prettyErrors: false, lineCounter });
  const firstError = document.errors[0];
  if (firstError) {
    const where = lineCounter.linePos(firstError.pos[0]);
    throw new ConfigError('CONFIG_PARSE', [`${file}${where ? `:${where.line}:${where.col}` : ''}: ${firstError.message.split('\n')[0]}`]);
  }
  const value: unknown = document.toJS();
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError('CONFIG_INVALID', [`${file}: the top level must be a mapping of keys, got ${Array.isArray(value) ? 'a list' : typeof value}`]);
  }
  return value as Record<string, unknown>;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const result: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(over)) {
    const existing = result[key];
    result[key] = isPlainObject(existing) && isPlainObject(value) ? deepMerge(existing, value) : value;
  }
  return result;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** File -> environment -> schema validation -> secret files. Throws ConfigError (exit code 2). */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const source = findConfigFile(options);
  const fromFile = source === undefined ? {} : readYaml(source);
  const raw = deepMerge(options.base ?? {}, fromFile);
  const envApplied = applyEnvOverrides(raw, configSchema, env);
  const config = validate(raw, configSchema);
  const secrets = resolveSecretFiles(config);
  return { config, source, envApplied, secrets };
}

export function validate(raw: unknown, schema: z.ZodType<AgentConfig>): AgentConfig {
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    throw new ConfigError(
      'CONFIG_INVALID',
      parsed.error.issues.map((issue) => formatIssue(issue, schema)),
    );
  }
  return parsed.data;
}

function readSecretFile(file: string, keyPath: string): string {
  try {
    // One trailing newline is how editors and `echo` leave files; it is not part of the secret.
    return fs.readFileSync(path.resolve(file), 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new ConfigError('SECRET_UNREADABLE', [`${keyPath}: cannot read ${file}: ${errorMessage(error)}`]);
  }
}

/** Moves passwordFile contents into password, so the rest of the agent sees one field. */
function resolveSecretFiles(config: AgentConfig): string[] {
  const secrets: string[] = [];
  if (config.mqtt.passwordFile !== undefined) {
    config.mqtt.password = readSecretFile(config.mqtt.passwordFile, 'mqtt.passwordFile');
  }
  if (config.mqtt.password !== undefined) secrets.push(config.mqtt.password);
  config.cameras.forEach((camera, index) => {
    if (camera.passwordFile !== undefined) camera.password = readSecretFile(camera.passwordFile, `cameras.${index}.passwordFile`);
    if (camera.password !== undefined) secrets.push(camera.password);
    const embedded = embeddedPassword(camera.url);
    if (embedded !== undefined) secrets.push(embedded);
  });
  return secrets;
}

function embeddedPassword(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.password === '' ? undefined : decodeURIComponent(parsed.password);
  } catch {
    return undefined; // a file path, not a URL: it has no credentials
  }
}
