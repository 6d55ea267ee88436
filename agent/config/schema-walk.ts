import type { z } from 'zod';

/**
 * Read-only introspection of the config schema, so that environment overrides and
 * redaction are derived from the schema instead of written a second time.
 */

type AnySchema = z.ZodType;

interface Def {
  type: string;
  innerType?: AnySchema;
  element?: AnySchema;
  shape?: Record<string, AnySchema>;
  in?: AnySchema;
  out?: AnySchema;
}

function defOf(schema: AnySchema): Def {
  return (schema as unknown as { def: Def }).def;
}

/** Strips optional/default/nullable/pipe wrappers down to the schema that holds the value. */
export function unwrap(schema: AnySchema): AnySchema {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if ((def.type === 'optional' || def.type === 'default' || def.type === 'prefault' || def.type === 'nullable' || def.type === 'readonly') && def.innerType) {
      current = def.innerType;
    } else if (def.type === 'pipe' && def.in) {
      current = def.in;
    } else {
      return current;
    }
  }
}

export function kindOf(schema: AnySchema): string {
  return defOf(unwrap(schema)).type;
}

export function isNullable(schema: AnySchema): boolean {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if (def.type === 'nullable') return true;
    if (def.innerType) current = def.innerType;
    else return false;
  }
}

export function objectShape(schema: AnySchema): Record<string, AnySchema> | undefined {
  const def = defOf(unwrap(schema));
  return def.type === 'object' ? def.shape : undefined;
}

export function arrayElement(schema: AnySchema): AnySchema | undefined {
  const def = defOf(unwrap(schema));
  return def.type === 'array' ? def.element : undefined;
}

export function isSecret(schema: AnySchema): boolean {
  let current: AnySchema | undefined = schema;
  while (current) {
    const meta = (current as unknown as { meta?: () => Record<string, unknown> | undefined }).meta?.();
    if (meta?.['secret'] === true) return true;
    current = defOf(current).innerType;
  }
  return false;
}

/** deviceId -> DEVICE_ID */
export function envSegment(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}
