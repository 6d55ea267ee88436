import type { z } from 'zod';
import { arrayElement, envSegment, isSecret, kindOf, objectShape } from './schema-walk.js';
import { ENV_PREFIX } from './env-overrides.js';

export interface KeyDoc {
  path: string;
  env: string;
  type: string;
  default: string;
  description: string;
}

interface Def {
  type: string;
  innerType?: z.ZodType;
  defaultValue?: unknown;
  entries?: Record<string, string>;
  options?: unknown[];
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { def: Def }).def;
}

function describeType(schema: z.ZodType): string {
  let current = schema;
  let optional = false;
  let nullable = false;
  for (;;) {
    const def = defOf(current);
    if (def.type === 'optional') optional = true;
    if (def.type === 'nullable') nullable = true;
    if (!def.innerType) break;
    current = def.innerType;
  }
  const def = defOf(current);
  let type = def.type;
  if (def.type === 'enum' && def.entries)
    type = Object.values(def.entries)
      .map((value) => `"${value}"`)
      .join(' \\| ');
  if (def.type === 'array') type = `list of ${describeType(arrayElement(current)!)}`;
  return `${type}${nullable ? ' or null' : ''}${optional ? ' (optional)' : ''}`;
}

function defaultOf(schema: z.ZodType): string {
  let current: z.ZodType | undefined = schema;
  while (current) {
    const def = defOf(current);
    // A default computed at load (the hostname) documents itself instead of this machine's value.
    const documented = (current as unknown as { meta?: () => Record<string, unknown> | undefined }).meta?.()?.['defaultDoc'];
    if (typeof documented === 'string') return documented;
    if (def.type === 'default') return JSON.stringify(def.defaultValue);
    current = def.innerType;
  }
  return '';
}

function descriptionOf(schema: z.ZodType): string {
  let current: z.ZodType | undefined = schema;
  while (current) {
    const text = (current as unknown as { description?: string }).description;
    if (text) return text;
    current = defOf(current).innerType;
  }
  return '';
}

/** Every leaf key of the config schema, for docs/configuration.md. */
export function describeConfig(schema: z.ZodType, prefix: string[] = []): KeyDoc[] {
  const shape = objectShape(schema);
  if (!shape) return [];
  const rows: KeyDoc[] = [];
  for (const [key, child] of Object.entries(shape)) {
    const keyPath = [...prefix, key];
    const element = arrayElement(child);
    if (kindOf(child) === 'object') {
      rows.push(...describeConfig(child, keyPath));
    } else if (element && kindOf(element) === 'object') {
      rows.push(...describeConfig(element, [...keyPath, 'N']));
    } else {
      const secret = isSecret(child) ? ' **Secret**: redacted in every output.' : '';
      rows.push({
        path: keyPath.join('.'),
        env: ENV_PREFIX + keyPath.map((segment) => (segment === 'N' ? 'N' : envSegment(segment))).join('__'),
        type: describeType(child),
        default: defaultOf(child),
        description: `${descriptionOf(child)}${secret}`.trim(),
      });
    }
  }
  return rows;
}

export function configKeysMarkdown(schema: z.ZodType): string {
  const rows = describeConfig(schema);
  const lines = ['| key | environment | type | default | meaning |', '|---|---|---|---|---|'];
  for (const row of rows)
    lines.push(`| \`${row.path}\` | \`${row.env}\` | ${row.type} | ${row.default ? `\`${row.default}\`` : ''} | ${row.description.replace(/\|/g, '\\|')} |`);
  return lines.join('\n');
}
