import { systemErrorCode } from '../errors.js';

export type DegradedReason = 'disk-full' | 'low-disk' | 'write-failed';

export interface ConditionChange {
  degraded: boolean;
  reason: DegradedReason | undefined;
  /** The SQLite or system code behind it (SQLITE_FULL, ENOSPC, SQLITE_IOERR_WRITE...). */
  code: string | undefined;
}

/** SQLite reports a full disk as SQLITE_FULL; ENOSPC comes from our own file writes. */
export function isDiskFull(error: unknown): boolean {
  const code = systemErrorCode(error);
  return code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EFBIG' || code === 'EDQUOT';
}

/**
 * Whether storage is healthy or degraded (disk full, low disk, writes failing), shared by the
 * writers that see failures and the retention that cures them. Degraded means: keep
 * classifying, keep the newest data in memory, prune the oldest on disk, report it.
 */
export class StorageCondition {
  private degradedBy: DegradedReason | undefined;
  private lastCode: string | undefined;
  private lowDisk = false;
  since = 0;
  transitions = 0;

  constructor(private readonly onChange: (change: ConditionChange) => void) {}

  get degraded(): boolean {
    return this.degradedBy !== undefined;
  }

  get reason(): DegradedReason | undefined {
    return this.degradedBy;
  }

  writeFailed(error: unknown): void {
    this.lastCode = systemErrorCode(error) ?? 'UNKNOWN';
    this.enter(isDiskFull(error) ? 'disk-full' : 'write-failed');
  }

  writeSucceeded(): void {
    if (this.degradedBy === 'disk-full' || this.degradedBy === 'write-failed') {
      if (this.lowDisk) this.enter('low-disk', true);
      else this.leave();
    }
  }

  freeSpace(freeBytes: number, minFreeBytes: number): void {
    this.lowDisk = freeBytes < minFreeBytes;
    if (this.lowDisk && this.degradedBy === undefined) {
      this.lastCode = 'LOW_DISK';
      this.enter('low-disk');
    } else if (!this.lowDisk && this.degradedBy === 'low-disk') {
      this.leave();
    }
  }

  private enter(reason: DegradedReason, force = false): void {
    if (this.degradedBy === reason && !force) return;
    if (this.degradedBy === undefined) this.since = Date.now();
    this.degradedBy = reason;
    this.transitions++;
    this.onChange({ degraded: true, reason, code: this.lastCode });
  }

  private leave(): void {
    this.degradedBy = undefined;
    this.transitions++;
    this.onChange({ degraded: false, reason: undefined, code: undefined });
  }
}
