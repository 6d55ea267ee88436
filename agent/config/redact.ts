import type { z } from 'zod';
import { arrayElement, isSecret, objectShape } from './schema-walk.js';

export const REDACTED = '***';

const URL_USERINFO = /([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^/@\s"']+@/g;

/** rtsp://user:pass@host/x -> rtsp://***@host/x (user names are credentials too). */
export function redactUrl(text: string): string {
  return text.replace(URL_USERINFO, `$1${REDACTED}@`);
}

/** A copy of a config value with every schema-marked secret masked and URL credentials removed. */
export function redactConfig<T>(value: T, schema: z.ZodType): T {
  return redactValue(value, schema) as T;
}

function redactValue(value: unknown, schema: z.ZodType | undefined): unknown {
  if (schema && isSecret(schema) && value !== undefined && value !== null) return REDACTED;
  if (typeof value === 'string') return redactUrl(value);
  if (Array.isArray(value)) {
    const element = schema ? arrayElement(schema) : undefined;
    return value.map((item) => redactValue(item, element));
  }
  if (typeof value === 'object' && value !== null) {
    const shape = schema ? objectShape(schema) : undefined;
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactValue(item, shape?.[key])]));
  }
  return value;
}

/**
 * Scrubs known secret values and URL credentials out of any text. The logger runs every
 * line through it, so a secret that reaches a message by accident is still masked.
 */
export class SecretScrubber {
  private readonly secrets = new Set<string>();

  add(secret: string | undefined): void {
    // Very short values would mask ordinary words; the schema requires non-empty secrets.
    if (secret !== undefined && secret.length >= 3) {
      this.secrets.add(secret);
      this.secrets.add(encodeURIComponent(secret));
    }
  }

  scrub(text: string): string {
    let result = text.includes('://') ? redactUrl(text) : text;
    for (const secret of this.secrets) {
      if (result.includes(secret)) result = result.split(secret).join(REDACTED);
    }
    return result;
  }
}
