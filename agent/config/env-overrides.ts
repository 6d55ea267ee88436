import type { z } from 'zod';
import { AgentError } from '../errors.js';
import { arrayElement, envSegment, isNullable, kindOf, objectShape } from './schema-walk.js';

export const ENV_PREFIX = 'CCTV_';
/** Variables under the prefix that are not config paths. */
const NON_CONFIG_VARIABLES = new Set(['CCTV_CONFIG', 'CCTV_ASSET_MIRROR']);

type Raw = Record<string, unknown>;

/**
 * Applies CCTV_<PATH> variables onto the raw (unvalidated) config. The path is the schema
 * path in UPPER_SNAKE with "__" between levels: mqtt.password -> CCTV_MQTT__PASSWORD,
 * cameras[0].url -> CCTV_CAMERAS__0__URL. Values are converted by the target's schema kind;
 * arrays and objects take JSON. The schema validates the result afterwards as usual.
 */
export function applyEnvOverrides(raw: Raw, schema: z.ZodType, env: NodeJS.ProcessEnv): string[] {
  const applied: string[] = [];
  const names = Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX) && !NON_CONFIG_VARIABLES.has(name))
    .sort();
  for (const name of names) {
    const value = env[name];
    if (value === undefined) continue;
    const segments = name.slice(ENV_PREFIX.length).split('__');
    setPath(raw, schema, segments, value, name);
    applied.push(name);
  }
  return applied;
}

function setPath(root: Raw, schema: z.ZodType, segments: string[], value: string, variable: string): void {
  let container: Raw | unknown[] = root;
  let current = schema;
  const keyPath: string[] = [];
  segments.forEach((segment, index) => {
    const isLast = index === segments.length - 1;
    const shape = objectShape(current);
    const element = arrayElement(current);
    let key: string | number;
    let child: z.ZodType;
    if (shape) {
      const match = Object.keys(shape).find((candidate) => envSegment(candidate) === segment);
      if (match === undefined) {
        throw new AgentError(
          'CONFIG_UNKNOWN_ENV',
          `${variable}: "${segment}" is not a key of ${keyPath.join('.') || 'the config'} (allowed: ${Object.keys(shape).map(envSegment).join(', ')})`,
        );
      }
      key = match;
      child = shape[match]!;
    } else if (element) {
      if (!/^\d+$/.test(segment)) {
        throw new AgentError('CONFIG_UNKNOWN_ENV', `${variable}: "${segment}" must be an array index under ${keyPath.join('.')}`);
      }
      key = Number(segment);
      child = element;
    } else {
      throw new AgentError('CONFIG_UNKNOWN_ENV', `${variable}: ${keyPath.join('.')} has no sub-keys`);
    }
    keyPath.push(String(key));
    if (isLast) {
      (container as Record<string | number, unknown>)[key] = convert(child, value, variable);
      return;
    }
    const existing = (container as Record<string | number, unknown>)[key];
    const next = typeof existing === 'object' && existing !== null ? existing : arrayElement(child) ? [] : {};
    (container as Record<string | number, unknown>)[key] = next;
    container = next as Raw;
    current = child;
  });
}

function convert(schema: z.ZodType, value: string, variable: string): unknown {
  if (value === 'null' && isNullable(schema)) return null;
  switch (kindOf(schema)) {
    case 'number': {
      const parsed = Number(value);
      return value.trim() === '' || Number.isNaN(parsed) ? value : parsed;
    }
    case 'boolean':
      return value === 'true' ? true : value === 'false' ? false : value;
    case 'array':
    case 'object':
      try {
        return JSON.parse(value) as unknown;
      } catch (error) {
        throw new AgentError('CONFIG_INVALID', `${variable}: expected JSON for this key, got ${JSON.stringify(value)}`, { cause: error });
      }
    default:
      return value;
  }
}
