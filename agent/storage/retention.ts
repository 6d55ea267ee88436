import fs from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { AgentConfig } from '../config/schema.js';
import { errorMessage, systemErrorCode } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { Db } from './database.js';
import type { DiskReserve } from './disk-reserve.js';
import type { AgentEvent } from './event-schema.js';
import type { StorageCondition } from './storage-condition.js';

type RetentionConfig = AgentConfig['storage']['retention'];

export interface RetentionDeps {
  db: () => Db;
  databaseFile: string;
  dataDir: string;
  config: RetentionConfig;
  condition: StorageCondition;
  reserve: DiskReserve;
  recordEvent: (event: AgentEvent) => void;
  log: Logger;
}

/** Share of the oldest results and telemetry removed by one emergency pruning. */
const EMERGENCY_SHARE = 0.1;
/** Pruning for the size cap stops this far below the cap, so it does not run on every pass. */
const SIZE_HYSTERESIS = 0.9;
const DAY_MS = 86_400_000;
const EMERGENCY_MIN_GAP_MS = 5000;
/** Rows per step of an emergency pruning: a few hundred KiB of WAL at most. */
const EMERGENCY_STEP_ROWS = 200;
const EMERGENCY_VACUUM_PAGES = 64;

interface PrunableTable {
  name: 'results' | 'telemetry' | 'events' | 'quality' | 'drift_windows' | 'feedback' | 'alerts' | 'retrain_transitions';
  timeColumn: string;
  maxAgeMs: number;
}

/**
 * Keeps the database within its age limits, its size cap and the free disk: deletes the
 * oldest rows in small transactions (storage.retention.pruneBatchRows), yielding to the event
 * loop between them so the result writer is never held for long. A full disk triggers an
 * emergency pruning: the disk reserve is released so SQLite has room to delete, the oldest
 * tenth of results and telemetry go, and the WAL and free pages are handed back.
 */
export class RetentionService implements Service {
  readonly name = 'retention';
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private emergencyWanted = false;
  private lastEmergencyAt = 0;
  private stopped = false;
  private pruned: Record<PrunableTable['name'], number> = {
    results: 0,
    telemetry: 0,
    events: 0,
    quality: 0,
    drift_windows: 0,
    feedback: 0,
    alerts: 0,
    retrain_transitions: 0,
  };
  private passes = 0;
  private lastError: string | undefined;

  constructor(private readonly deps: RetentionDeps) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.deps.reserve.ensure();
    this.timer = setInterval(() => this.trigger(), this.deps.config.pruneIntervalSeconds * 1000);
    this.trigger();
  }

  /** A writer met a full disk: prune now instead of at the next tick. */
  emergency(): void {
    this.emergencyWanted = true;
    this.trigger();
  }

  /** Runs one pass unless one is running; resolves when that pass is over. */
  trigger(): Promise<void> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
      if (!this.emergencyWanted || this.stopped || this.retryTimer) return;
      const wait = Math.max(0, this.lastEmergencyAt + EMERGENCY_MIN_GAP_MS - Date.now());
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        void this.trigger();
      }, wait);
    });
    return this.running;
  }

  private async pass(): Promise<void> {
    this.passes++;
    try {
      // Bounded: a disk filled by someone else must not make us delete everything at once.
      const emergency = this.emergencyWanted && Date.now() - this.lastEmergencyAt >= EMERGENCY_MIN_GAP_MS;
      if (emergency) {
        this.emergencyWanted = false;
        this.lastEmergencyAt = Date.now();
        await this.emergencyPrune();
      }
      const tables: PrunableTable[] = [
        { name: 'results', timeColumn: 'captured_at', maxAgeMs: this.deps.config.resultsDays * DAY_MS },
        { name: 'telemetry', timeColumn: 'at', maxAgeMs: this.deps.config.telemetryDays * DAY_MS },
        { name: 'events', timeColumn: 'at', maxAgeMs: this.deps.config.eventsDays * DAY_MS },
        // The quality log ages like telemetry; ground truth and its consequences like events.
        { name: 'quality', timeColumn: 'at', maxAgeMs: this.deps.config.telemetryDays * DAY_MS },
        { name: 'drift_windows', timeColumn: 'at', maxAgeMs: this.deps.config.telemetryDays * DAY_MS },
        { name: 'feedback', timeColumn: 'received_at', maxAgeMs: this.deps.config.eventsDays * DAY_MS },
        { name: 'alerts', timeColumn: 'raised_at', maxAgeMs: this.deps.config.eventsDays * DAY_MS },
        { name: 'retrain_transitions', timeColumn: 'at', maxAgeMs: this.deps.config.eventsDays * DAY_MS },
      ];
      for (const table of tables) await this.pruneOlderThan(table, Date.now() - table.maxAgeMs);
      await this.enforceSizeCap();
      await this.checkFreeSpace();
      this.lastError = undefined;
    } catch (error) {
      this.lastError = systemErrorCode(error) ?? errorMessage(error);
      if (!this.stopped) this.deps.log.error({ code: this.lastError }, 'retention pass failed: retrying at the next one');
    }
  }

  private async pruneOlderThan(table: PrunableTable, cutoff: number): Promise<number> {
    const db = this.deps.db();
    const statement = db.prepare(`DELETE FROM ${table.name} WHERE id IN (SELECT id FROM ${table.name} WHERE ${table.timeColumn} < ? ORDER BY id LIMIT ?)`);
    let total = 0;
    for (;;) {
      if (this.stopped) break;
      const { changes } = statement.run(cutoff, this.deps.config.pruneBatchRows);
      total += changes;
      if (changes < this.deps.config.pruneBatchRows) break;
      await nextTurn();
    }
    this.pruned[table.name] += total;
    return total;
  }

  private async pruneOldest(table: 'results' | 'telemetry', rows: number): Promise<number> {
    let total = 0;
    while (total < rows && !this.stopped) {
      const changes = this.deleteOldest(table, Math.min(this.deps.config.pruneBatchRows, rows - total));
      total += changes;
      if (changes === 0) break;
      await nextTurn();
    }
    return total;
  }

  private deleteOldest(table: 'results' | 'telemetry', rows: number): number {
    const { changes } = this.deps.db().prepare(`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} ORDER BY id LIMIT ?)`).run(rows);
    this.pruned[table] += changes;
    return changes;
  }

  /**
   * Bytes the data takes: pages in use (free pages are reused first). The WAL is left out:
   * it holds copies of pages, is folded back by checkpoints, and pruning itself grows it.
   */
  usedBytes(): number {
    const db = this.deps.db();
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pages = (db.pragma('page_count', { simple: true }) as number) - (db.pragma('freelist_count', { simple: true }) as number);
    return pages * pageSize;
  }

  private async enforceSizeCap(): Promise<void> {
    const capMb = this.deps.config.maxDatabaseMB;
    if (capMb === null) return;
    const cap = capMb * 1024 * 1024;
    let used = this.usedBytes();
    if (used <= cap) return;
    const before = used;
    let removed = 0;
    const db = this.deps.db();
    // Oldest first, in rounds of a twentieth, until below the cap with some headroom.
    while (used > cap * SIZE_HYSTERESIS && !this.stopped) {
      const results = db.prepare('SELECT count(*) AS n FROM results').get() as { n: number };
      const telemetry = db.prepare('SELECT count(*) AS n FROM telemetry').get() as { n: number };
      if (results.n + telemetry.n === 0) break;
      removed += await this.pruneOldest('results', Math.max(1, Math.ceil(results.n / 20)));
      removed += await this.pruneOldest('telemetry', Math.ceil(telemetry.n / 20));
      used = this.usedBytes();
    }
    this.releaseFreePages();
    db.pragma('wal_checkpoint(TRUNCATE)');
    this.deps.log.warn({ capMb, beforeBytes: before, afterBytes: used, rows: removed }, 'database above its size cap: oldest rows pruned');
    this.deps.recordEvent({
      kind: 'storage-pruned',
      subject: 'database',
      detail: { reason: 'size-cap', rows: removed, beforeBytes: before, afterBytes: used },
    });
  }

  private async emergencyPrune(): Promise<void> {
    // Room for SQLite to write the deletions: a full disk cannot even grow the WAL. From here
    // to the end nothing yields, so no writer takes that room before the pruning does.
    const reserveReleased = this.deps.reserve.releaseNow();
    const db = this.deps.db();
    // A write that failed for lack of space may have left the WAL file grown: give it back.
    db.pragma('wal_checkpoint(TRUNCATE)');
    const count = (table: string): number => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    const targets = {
      results: Math.max(this.deps.config.pruneBatchRows, Math.ceil(count('results') * EMERGENCY_SHARE)),
      telemetry: Math.ceil(count('telemetry') * EMERGENCY_SHARE),
    };
    let rows = 0;
    for (const table of ['results', 'telemetry'] as const) {
      for (let done = 0; done < targets[table]; ) {
        // Small steps, each folded back into the file: the WAL never needs more than a step.
        const changes = this.deleteOldest(table, Math.min(EMERGENCY_STEP_ROWS, targets[table] - done));
        db.pragma('wal_checkpoint(TRUNCATE)');
        if (changes === 0) break;
        done += changes;
        rows += changes;
      }
    }
    this.releaseFreePages(true);
    const freeBytes = await freeDiskBytes(this.deps.dataDir);
    this.deps.log.warn({ rows, freeBytes, reserveReleased }, 'disk full: oldest results and telemetry pruned');
    this.deps.recordEvent({
      kind: 'storage-pruned',
      subject: 'database',
      code: 'STORAGE_DISK_FULL',
      detail: { reason: 'disk-full', rows, freeBytes, reserveReleased },
    });
  }

  /**
   * With auto_vacuum=INCREMENTAL (new databases) free pages go back to the file system, in
   * steps each followed by a checkpoint, since moving pages goes through the WAL first.
   */
  private releaseFreePages(stepwise = false): void {
    const db = this.deps.db();
    if ((db.pragma('auto_vacuum', { simple: true }) as number) !== 2) return;
    if (!stepwise) {
      db.pragma('incremental_vacuum');
      return;
    }
    for (let free = db.pragma('freelist_count', { simple: true }) as number; free > 0; ) {
      db.pragma(`incremental_vacuum(${EMERGENCY_VACUUM_PAGES})`);
      db.pragma('wal_checkpoint(TRUNCATE)');
      const left = db.pragma('freelist_count', { simple: true }) as number;
      if (left >= free) break;
      free = left;
    }
  }

  private async checkFreeSpace(): Promise<void> {
    const minFree = this.deps.config.minFreeDiskMB * 1024 * 1024;
    const freeBytes = await freeDiskBytes(this.deps.dataDir);
    if (freeBytes < minFree && !this.deps.condition.degraded) {
      // Not full yet: prune ahead of it, as an emergency would.
      this.emergencyWanted = true;
    }
    this.deps.condition.freeSpace(freeBytes, minFree);
    if (freeBytes >= minFree + this.deps.reserve.sizeBytes) await this.deps.reserve.ensure();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = undefined;
    await this.running;
  }

  health(): Health {
    return {
      ok: this.lastError === undefined,
      state: this.deps.condition.degraded ? `degraded: ${this.deps.condition.reason}` : 'ok',
      detail: { passes: this.passes, pruned: { ...this.pruned }, ...(this.lastError ? { lastError: this.lastError } : {}) },
    };
  }
}

export async function freeDiskBytes(dir: string): Promise<number> {
  const stats = await fs.promises.statfs(dir);
  return stats.bavail * stats.bsize;
}
