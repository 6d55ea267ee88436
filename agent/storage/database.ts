import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { AgentError, errorMessage } from '../errors.js';
import { migrations } from './migrations.js';

export type Db = Database.Database;

/**
 * Opens (creating if needed) the agent's database: WAL so readers (the CLI) never block the
 * writer, synchronous=NORMAL (a power cut can lose the last commits, never corrupt the file;
 * see docs/storage.md), then brings the schema up to date.
 */
export function openDatabase(file: string, options: { readonly?: boolean } = {}): Db {
  let db: Db;
  try {
    if (!options.readonly) fs.mkdirSync(path.dirname(file), { recursive: true });
    db = new Database(file, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  } catch (error) {
    throw new AgentError('STORAGE_OPEN_FAILED', `cannot open database ${file}: ${errorMessage(error)}`, { cause: error });
  }
  db.pragma('busy_timeout = 2000');
  if (options.readonly) return db;
  // Only possible before the first table: lets pruning hand free pages back to the disk.
  if (schemaVersion(db) === 0) db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

export function schemaVersion(db: Db): number {
  return db.pragma('user_version', { simple: true }) as number;
}

export function migrate(db: Db): number {
  const current = schemaVersion(db);
  const latest = migrations[migrations.length - 1]!.version;
  if (current > latest) {
    throw new AgentError(
      'STORAGE_OPEN_FAILED',
      `database schema version ${current} is newer than this agent's ${latest}: run a newer agent or restore a backup`,
    );
  }
  for (const migration of migrations) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
    })();
  }
  return schemaVersion(db);
}
