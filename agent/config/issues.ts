import type { z } from 'zod';
import { REDACTED, redactUrl } from './redact.js';
import { arrayElement, isSecret, objectShape } from './schema-walk.js';

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  input?: unknown;
  keys?: string[];
}

/** The schema at a key path, to list allowed keys in an "unknown key" error. */
function schemaAt(schema: z.ZodType, keyPath: PropertyKey[]): z.ZodType | undefined {
  let current: z.ZodType | undefined = schema;
  for (const key of keyPath) {
    if (!current) return undefined;
    current = typeof key === 'number' ? arrayElement(current) : objectShape(current)?.[String(key)];
  }
  return current;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** One line: `key.path: what is wrong (got X; allowed Y)`. */
export function formatIssue(raw: z.core.$ZodIssue, schema: z.ZodType): string {
  const issue = raw as unknown as Issue;
  const keyPath = issue.path.map(String).join('.') || '(top level)';
  if (issue.code === 'unrecognized_keys' && issue.keys) {
    const allowed = Object.keys(objectShape(schemaAt(schema, issue.path) ?? schema) ?? {});
    return issue.keys.map((key) => `${issue.path.length ? `${keyPath}.` : ''}${key}: unknown key (allowed here: ${allowed.join(', ')})`).join('; ');
  }
  // A custom issue's input is the whole object it checked (secrets included): not shown.
  const target = schemaAt(schema, issue.path);
  const shown = target && isSecret(target) ? REDACTED : typeof issue.input === 'string' ? redactUrl(issue.input) : issue.input;
  const got = issue.code !== 'custom' && 'input' in issue ? ` (got ${show(shown)})` : '';
  return `${keyPath}: ${issue.message}${got}`;
}
