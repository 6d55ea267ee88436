import path from 'node:path';
import type { AgentConfig } from '../config/schema.js';
import type { Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { DeviceTopics } from '../mqtt/topics.js';
import { DiskReserve } from '../storage/disk-reserve.js';
import { EventLog } from '../storage/event-log.js';
import { OutboxCapPolicy } from '../storage/outbox-cap.js';
import { ResultWriter } from '../storage/result-writer.js';
import { RetentionService } from '../storage/retention.js';
import { StorageCondition } from '../storage/storage-condition.js';
import { StorageService } from '../storage/storage-service.js';

/** The database and everything that writes it: events, retention, the results writer. */
export interface StoragePart {
  storage: StorageService;
  events: EventLog;
  condition: StorageCondition;
  writer: ResultWriter;
  databaseFile: string;
  /** Start order: storage first (the root puts the embedded broker right after it). */
  storageService: Service;
  writers: Service[];
}

export interface StorageWiring {
  topics: DeviceTopics;
  /** True when messages go to a broker: the writers then fill the outbox. */
  publishing: boolean;
  /** Called after a commit that added outbox rows (wakes the drain). */
  onCommitted: (() => void) | undefined;
}

export const expiryMsOf = (seconds: number | null): number | null => (seconds === null ? null : seconds * 1000);

export function buildStorage(config: AgentConfig, wiring: StorageWiring, log: Logger): StoragePart {
  const { topics, publishing } = wiring;
  const databaseFile = path.resolve(config.dataDir, config.storage.fileName);
  const storageLog = log.child({ module: 'storage' });
  const storage = new StorageService(databaseFile, storageLog);
  const wake = wiring.onCommitted ? { onCommitted: wiring.onCommitted } : {};
  const events = new EventLog({
    db: () => storage.openDb,
    deviceId: config.deviceId,
    topic: publishing ? topics.events : undefined,
    expiryMs: expiryMsOf(config.mqtt.expirySeconds.events),
    ...wake,
    log: log.child({ module: 'events' }),
  });
  const condition = new StorageCondition((change) => {
    if (change.degraded) {
      storageLog.error(
        { reason: change.reason, code: change.code },
        'storage degraded: classifying goes on, the newest results wait in memory, the oldest on disk are pruned',
      );
      events.record({
        kind: 'storage-degraded',
        subject: 'database',
        code: change.reason === 'write-failed' ? 'STORAGE_WRITE_FAILED' : 'STORAGE_DISK_FULL',
        detail: { reason: change.reason, cause: change.code },
      });
    } else {
      storageLog.warn('storage recovered');
      events.record({ kind: 'storage-recovered', subject: 'database' });
    }
  });
  const retention = new RetentionService({
    db: () => storage.db,
    databaseFile,
    dataDir: path.dirname(databaseFile),
    config: config.storage.retention,
    condition,
    reserve: new DiskReserve(path.dirname(databaseFile), storageLog),
    recordEvent: (event) => events.record(event),
    log: storageLog,
  });
  const outboxCap = publishing
    ? new OutboxCapPolicy({
        outbox: () => storage.outbox,
        max: config.storage.outboxMaxMessages,
        report: (dropped, cap) => events.record({ kind: 'outbox-overflow', subject: 'outbox', detail: { dropped, cap } }),
        log: storageLog,
      })
    : undefined;
  const writer = new ResultWriter({
    db: () => storage.db,
    deviceId: config.deviceId,
    resultsTopic: publishing ? topics.results : undefined,
    expiryMs: expiryMsOf(config.mqtt.expirySeconds.results),
    flushIntervalMs: config.storage.flushIntervalMs,
    maxBatchRows: config.storage.maxBatchRows,
    condition,
    onDiskFull: () => retention.emergency(),
    afterCommit: () => {
      if (events.pending > 0) events.retry();
      outboxCap?.afterCommit();
    },
    ...wake,
    log: log.child({ module: 'results' }),
  });
  return { storage, events, condition, writer, databaseFile, storageService: storage, writers: [events, retention, writer] };
}
