import type { Db } from '../storage/database.js';

const COUNTER = 'evidence_random_complete_since';

/**
 * Since when every random sample taken is still held (ms, capture time): the range over which an
 * estimator may treat the random samples as the whole uniform draw. It starts at the first start
 * of the evidence service and moves forward past each random sample the quota or retention
 * deletes. Kept in the counters table so that it survives restarts.
 */
export class RandomCompleteness {
  private readonly read;
  private write: ((value: number) => void) | undefined;
  private value: number | undefined;

  constructor(private readonly db: Db) {
    this.read = db.prepare<[string], { value: number }>('SELECT value FROM counters WHERE name = ?');
  }

  /** The stored value, from a read-only connection (the CLI). */
  peek(): number | undefined {
    return this.read.get(COUNTER)?.value;
  }

  /** At start (the evidence service): the stored value, or now on the very first start. */
  begin(now: number): void {
    const statement = this.db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value');
    this.write = (value) => statement.run(COUNTER, value);
    this.value = this.peek();
    if (this.value === undefined) this.set(now);
  }

  /** A random sample captured at `capturedAt` was deleted. */
  lost(capturedAt: number): void {
    if (this.value === undefined || capturedAt >= this.value) this.set(capturedAt + 1);
  }

  since(): number | undefined {
    return this.value;
  }

  private set(value: number): void {
    this.value = value;
    this.write?.(value);
  }
}
