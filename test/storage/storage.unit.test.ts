import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { InferenceResult } from '../../agent/inference/result.js';
import { OutboxDrain, type Publisher } from '../../agent/mqtt/outbox-drain.js';
import { migrate, openDatabase, schemaVersion } from '../../agent/storage/database.js';
import { migrations } from '../../agent/storage/migrations.js';
import { SqliteOutbox } from '../../agent/storage/outbox.js';
import { ResultWriter } from '../../agent/storage/result-writer.js';
import { captureLogger } from '../support/capture-log.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-storage-');

function result(seq: number): InferenceResult {
  return {
    cameraId: 'cam1',
    seq,
    capturedAt: 1_700_000_000_000 + seq * 200,
    model: { id: 'yolox-nano-int8', version: '1.0.0' },
    task: 'detection',
    vehicles: [{ type: 'car', label: 'car', score: 0.9, box: [0.1, 0.2, 0.05, 0.04] }],
    inferenceMs: 9.5,
  };
}

describe('database', () => {
  it('migrates a fresh file to the latest version, WAL on, and reopens idempotently', () => {
    const file = path.join(tempDir(), 'nested', 'agent.db');
    const db = openDatabase(file);
    expect(schemaVersion(db)).toBe(migrations.at(-1)!.version);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    db.close();
    const again = openDatabase(file);
    expect(migrate(again)).toBe(migrations.at(-1)!.version);
    again.close();
  });

  it('refuses a database from a newer agent', () => {
    const file = path.join(tempDir(), 'agent.db');
    const db = openDatabase(file);
    db.pragma('user_version = 999');
    db.close();
    expect(() => openDatabase(file)).toThrow(expect.objectContaining({ code: 'STORAGE_OPEN_FAILED' }));
  });
});

describe('result writer and outbox', () => {
  it('writes results and their outbox rows in one transaction per flush, with the model id and version', async () => {
    const db = openDatabase(path.join(tempDir(), 'agent.db'));
    let commits = 0;
    const writer = new ResultWriter({
      db: () => db,
      deviceId: 'edge1',
      resultsTopic: 'cctv/edge1/results',
      flushIntervalMs: 10_000,
      maxBatchRows: 1000,
      onCommitted: () => commits++,
      log: captureLogger().log,
    });
    await writer.start();
    for (let seq = 0; seq < 25; seq++) writer.enqueue(result(seq));
    expect(db.prepare('SELECT count(*) AS n FROM results').get()).toEqual({ n: 0 });
    writer.flush();
    expect(commits).toBe(1);
    const rows = db
      .prepare('SELECT r.message_id, r.model_id, r.model_version, o.payload FROM results r JOIN outbox o ON o.message_id = r.message_id ORDER BY o.id')
      .all() as Array<{ message_id: string; model_id: string; model_version: string; payload: Buffer }>;
    expect(rows).toHaveLength(25);
    const first = JSON.parse(rows[0]!.payload.toString());
    expect(first).toMatchObject({ id: rows[0]!.message_id, deviceId: 'edge1', cameraId: 'cam1', seq: 0, model: { id: 'yolox-nano-int8', version: '1.0.0' } });
    expect(first.capturedAt).toBe(new Date(1_700_000_000_000).toISOString());
    await writer.stop();
    db.close();
  });

  it('enqueue() returns the id the result is then stored and published under, also after a failed flush', async () => {
    const db = openDatabase(path.join(tempDir(), 'agent.db'));
    const writer = new ResultWriter({ db: () => db, deviceId: 'e', resultsTopic: 't', flushIntervalMs: 10_000, maxBatchRows: 1000, log: captureLogger().log });
    await writer.start();
    const ids = [0, 1, 2].map((seq) => writer.enqueue(result(seq)));
    expect(new Set(ids).size).toBe(3);
    // A refused write keeps the batch: the ids must stay with their results through the retry.
    db.exec('CREATE TRIGGER refuse BEFORE INSERT ON results BEGIN SELECT RAISE(ABORT, "refused"); END');
    writer.flush();
    ids.push(writer.enqueue(result(3)));
    db.exec('DROP TRIGGER refuse');
    await writer.stop();
    const stored = db
      .prepare('SELECT r.seq, r.message_id, o.payload FROM results r JOIN outbox o ON o.message_id = r.message_id ORDER BY r.seq')
      .all() as Array<{
      seq: number;
      message_id: string;
      payload: Buffer;
    }>;
    expect(stored.map((row) => row.message_id)).toEqual(ids);
    expect(stored.map((row) => JSON.parse(row.payload.toString()).id)).toEqual(ids);
    db.close();
  });

  it('flushes early when a batch is full, and on stop', async () => {
    const db = openDatabase(path.join(tempDir(), 'agent.db'));
    const writer = new ResultWriter({
      db: () => db,
      deviceId: 'e',
      resultsTopic: undefined,
      flushIntervalMs: 10_000,
      maxBatchRows: 10,
      log: captureLogger().log,
    });
    await writer.start();
    for (let seq = 0; seq < 15; seq++) writer.enqueue(result(seq));
    expect(db.prepare('SELECT count(*) AS n FROM results').get()).toEqual({ n: 10 });
    await writer.stop();
    expect(db.prepare('SELECT count(*) AS n FROM results').get()).toEqual({ n: 15 });
    expect(db.prepare('SELECT count(*) AS n FROM outbox').get()).toEqual({ n: 0 });
    db.close();
  });

  it('the drain publishes in id order and deletes only the acknowledged prefix', async () => {
    const db = openDatabase(path.join(tempDir(), 'agent.db'));
    const writer = new ResultWriter({ db: () => db, deviceId: 'e', resultsTopic: 't', flushIntervalMs: 10_000, maxBatchRows: 1000, log: captureLogger().log });
    await writer.start();
    for (let seq = 0; seq < 6; seq++) writer.enqueue(result(seq));
    await writer.stop();
    const outbox = new SqliteOutbox(db);
    const sent: number[] = [];
    let failSeq = 3;
    const publisher: Publisher = {
      connected: true,
      onConnect: () => undefined,
      publish: async (_topic, payload) => {
        const seq = JSON.parse(payload.toString()).seq as number;
        sent.push(seq);
        if (seq === failSeq) throw new Error('link lost');
      },
    };
    const drain = new OutboxDrain({ outbox: () => outbox, publisher, batchSize: 100, log: captureLogger().log });
    await drain.start();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sent.slice(0, 6)).toEqual([0, 1, 2, 3, 4, 5]);
    failSeq = -1;
    drain.wake();
    await new Promise((resolve) => setTimeout(resolve, 50));
    await drain.stop();
    // 3 failed, so 3, 4 and 5 were sent again (at-least-once, in order); nothing is left.
    expect(sent.slice(6)).toEqual([3, 4, 5]);
    expect(outbox.depth()).toBe(0);
    db.close();
  });
});
