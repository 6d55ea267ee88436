import v8 from 'node:v8';

/**
 * The agent allocates little (a few hundred KB a second of short-lived objects per camera), so
 * V8 keeps its old generation tight (a growing factor of 1.1) and marks the whole ~20 MB heap
 * every few seconds to free about 1 MB: measured, a tenth of the main thread's time. Letting the
 * heap grow further before a full collection trades some megabytes for that time
 * (docs/decisions/0013-heap-growth.md). V8 reads the factor at each full collection, so setting
 * it once the process runs takes effect from the next one.
 */
export function applyHeapGrowth(percent: number): void {
  if (percent > 0) v8.setFlagsFromString(`--heap-growing-percent=${percent}`);
}
