import fs from 'node:fs';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import { openDatabase, schemaVersion, type Db } from './database.js';
import { SqliteOutbox } from './outbox.js';

/** Owns the database connection; the writers and the outbox reader use it once started. */
export class StorageService implements Service {
  readonly name = 'storage';
  private database: Db | undefined;
  private outboxReader: SqliteOutbox | undefined;

  constructor(
    readonly file: string,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.database = openDatabase(this.file);
    this.outboxReader = new SqliteOutbox(this.database);
    this.log.info({ file: this.file, schema: schemaVersion(this.database), outbox: this.outboxReader.depth() }, 'database open');
  }

  get db(): Db {
    if (!this.database) throw new Error('storage used before start');
    return this.database;
  }

  /** The connection, or undefined before start and after stop. */
  get openDb(): Db | undefined {
    return this.database?.open ? this.database : undefined;
  }

  get outbox(): SqliteOutbox {
    if (!this.outboxReader) throw new Error('storage used before start');
    return this.outboxReader;
  }

  async stop(): Promise<void> {
    const db = this.database;
    this.database = undefined;
    if (db?.open) {
      // Folds the WAL back so the file on disk is complete on its own.
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    }
  }

  /** The database file plus its WAL (recent commits live there until a checkpoint). */
  sizeBytes(): number {
    let sizeBytes = 0;
    for (const file of [this.file, `${this.file}-wal`]) if (fs.existsSync(file)) sizeBytes += fs.statSync(file).size;
    return sizeBytes;
  }

  health(): Health {
    return { ok: this.database?.open === true, state: this.database?.open ? 'open' : 'closed', detail: { sizeBytes: this.sizeBytes() } };
  }
}
