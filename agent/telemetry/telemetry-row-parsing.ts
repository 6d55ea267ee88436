import { telemetrySampleSchema, type TelemetrySample } from './telemetry-sample.js';

/* The telemetry log's JSON columns read back: the vehicles' types of a result row and a telemetry sample. */

/**
 * `"type":"car"` as JSON.stringify writes each vehicle. Scanning for it is about five times
 * faster than JSON.parse on 100k rows (docs/operations.md); a row whose match count differs
 * from its vehicle_count column is parsed properly instead, so the counts stay exact.
 */
const TYPE_PATTERN = /"type"\s*:\s*"([^"\\]*)"/g;

export function countVehicleTypes(json: string, expected: number, into: Record<string, number>): boolean {
  const found: string[] = [];
  TYPE_PATTERN.lastIndex = 0;
  for (let match = TYPE_PATTERN.exec(json); match !== null; match = TYPE_PATTERN.exec(json)) found.push(match[1]!);
  if (found.length !== expected) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(json);
    } catch (error) {
      // A damaged row must not hide every other row's figures: the caller counts it.
      if (error instanceof SyntaxError) return false;
      throw error;
    }
    if (!Array.isArray(parsed)) return false;
    found.length = 0;
    for (const vehicle of parsed as Array<{ type?: unknown }>) if (typeof vehicle?.type === 'string') found.push(vehicle.type);
  }
  for (const type of found) into[type] = (into[type] ?? 0) + 1;
  return true;
}

export function parseSample(json: string): TelemetrySample | null {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (error) {
    // The columns still give the figures; only the per-camera detail is lost.
    if (error instanceof SyntaxError) return null;
    throw error;
  }
  const parsed = telemetrySampleSchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}
