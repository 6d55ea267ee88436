import crypto from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { monitorSchema } from '../../agent/config/monitor-schema.js';
import { isAgentError } from '../../agent/errors.js';
import type { FeedbackItem } from '../../agent/monitor/feedback-schema.js';
import { MonitorService } from '../../agent/monitor/monitor-service.js';
import type { AlertsPayload, RetrainPayload } from '../../agent/monitor/quality-schema.js';
import { deviceTopics, fleetTopics } from '../../agent/mqtt/topics.js';
import { openDatabase, type Db } from '../../agent/storage/database.js';
import type { AgentEvent } from '../../agent/storage/event-schema.js';
import { SqliteOutbox } from '../../agent/storage/outbox.js';
import { captureLogger } from '../support/capture-log.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-monitor-');
const topics = deviceTopics('cctv', 'dev');
const MODEL = { id: 'yolox-nano-int8', version: '1.0.0' };

/** Stored results, each with `vehicles` cars, as the result writer would have left them. */
function insertResults(db: Db, count: number, vehicles = 3): string[] {
  const insert = db.prepare(
    `INSERT INTO results (message_id, camera_id, seq, captured_at, model_id, model_version, task, vehicle_count, vehicles, top, inference_ms)
     VALUES (?, 'north', ?, ?, ?, ?, 'detection', ?, ?, NULL, 10)`,
  );
  const list = JSON.stringify(Array.from({ length: vehicles }, () => ({ type: 'car', label: 'car', score: 0.6, box: [0.1, 0.1, 0.1, 0.1] })));
  return Array.from({ length: count }, (_, i) => {
    const id = crypto.randomUUID();
    insert.run(id, i, 1_000_000 + i * 200, MODEL.id, MODEL.version, vehicles, list);
    return id;
  });
}

function setup(rules?: unknown[]) {
  const db = openDatabase(path.join(tempDir(), 'agent.db'));
  let now = 2_000_000;
  const events: AgentEvent[] = [];
  const config = monitorSchema.parse({ windows: { labels: 50, minutes: 60 }, ...(rules ? { alerts: rules } : {}) });
  const monitor = new MonitorService({
    db: () => db,
    deviceId: 'dev',
    config,
    topics,
    fleet: fleetTopics('cctv'),
    publishing: true,
    recordEvent: (event) => events.push(event),
    activeKeys: () => [{ cameraId: 'north', modelId: MODEL.id, modelVersion: MODEL.version }],
    now: () => now,
    log: captureLogger().log,
  });
  const outbox = new SqliteOutbox(db);
  const messages = (topic: string) =>
    outbox
      .peek(0, 10_000)
      .filter((row) => row.topic === topic)
      .map((row) => ({ retain: row.retain, payload: JSON.parse(row.payload.toString()) as unknown }));
  return { db, monitor, events, messages, tick: (ms: number) => (now += ms) };
}

/** Verdicts on the first detection of each result: `bad` of them false positives, the rest correct. */
function verdicts(results: string[], bad: number, tag: string): FeedbackItem[] {
  return results.map((resultId, i) => ({ id: `${tag}-${i}`, resultId, detection: 0, verdict: i < bad ? 'false-positive' : 'correct' }));
}

describe('the monitor on a real SQLite file (injected clock)', () => {
  it('60 % false positives: one alert, one retrain request with its evidence; more bad feedback adds none; good feedback clears after the hysteresis', async () => {
    const { db, monitor, events, messages, tick } = setup();
    await monitor.start();
    // health() caches its counts (read every 2 s by the status file): they must follow every change.
    const counts = () => {
      const { alerts, retrainPending } = monitor.health().detail as { alerts: number; retrainPending: number };
      return { alerts, retrainPending };
    };
    expect(counts()).toEqual({ alerts: 0, retrainPending: 0 });
    const results = insertResults(db, 200);
    const first = monitor.acceptFeedback(verdicts(results.slice(0, 50), 30, 'a'), 'mqtt', false);
    expect(first).toMatchObject({ stored: 50, duplicates: 0 });
    const alerts = messages(topics.alerts).map((message) => message as { retain: boolean; payload: AlertsPayload });
    expect(alerts.at(-1)!.retain).toBe(true);
    expect(alerts.at(-1)!.payload.active).toHaveLength(1);
    expect(alerts.at(-1)!.payload.active[0]).toMatchObject({ ruleId: 'low-precision', value: 0.4, labels: 50, threshold: 0.4, clearAt: 0.5 });
    const retrain = messages(topics.retrain).map((message) => message.payload as RetrainPayload);
    expect(retrain).toHaveLength(1);
    expect(retrain[0]).toMatchObject({ state: 'pending', cameraId: 'north', model: MODEL, trigger: 'rule:low-precision' });
    expect(retrain[0]!.evidence.alert).toMatchObject({ ruleId: 'low-precision' });
    expect(retrain[0]!.evidence.windows.labels.overall).toMatchObject({ labelled: 50, correct: 20, falsePositive: 30 });
    expect(retrain[0]!.evidence.windows.labels.overall.precision).toMatchObject({ value: 0.4, n: 50 });
    expect(retrain[0]!.evidence.windows.labels.confusion).toEqual({ car: { car: 20, none: 30 } });
    expect(retrain[0]!.evidence.timeRange.from).not.toBeNull();
    expect(messages(fleetTopics('cctv').retrain)).toHaveLength(1);
    expect(events.filter((event) => event.kind === 'alert-raised')).toHaveLength(1);
    expect(events.filter((event) => event.kind === 'retrain-requested')).toHaveLength(1);
    expect(counts()).toEqual({ alerts: 1, retrainPending: 1 });
    expect(monitor.health().state).toBe('alerting (1)');

    // Worse still while the request is pending: no second alert, no second request.
    tick(60_000);
    monitor.acceptFeedback(verdicts(results.slice(50, 100), 40, 'b'), 'mqtt', false);
    expect(messages(topics.retrain)).toHaveLength(1);
    expect(events.filter((event) => event.kind === 'alert-raised')).toHaveLength(1);

    // Good labels. The window is the last 50 by capture time: 12 new right ones with the last 38
    // of the batch before (10 right) make 22/50 = 0.44, not enough (hysteresis); 3 more make 0.50.
    tick(60_000);
    monitor.acceptFeedback(verdicts(results.slice(100, 112), 0, 'c'), 'mqtt', false);
    expect(monitor.snapshot().quality[0]!.windows.labels.overall.precision!.value).toBe(0.44);
    expect(events.filter((event) => event.kind === 'alert-cleared')).toHaveLength(0);
    monitor.acceptFeedback(verdicts(results.slice(112, 115), 0, 'd'), 'mqtt', false);
    expect(events.filter((event) => event.kind === 'alert-cleared')).toHaveLength(1);
    expect((messages(topics.alerts).at(-1)!.payload as AlertsPayload).active).toEqual([]);
    expect(counts()).toEqual({ alerts: 0, retrainPending: 1 });
    // The request stays pending until acknowledged: clearing does not answer it.
    expect(monitor.snapshot().retrain[0]!.state).toBe('pending');
    await monitor.stop();
  });

  it('acknowledgement ends the pending state (audited); a newer active model supersedes; a manual request takes a reason', async () => {
    const { db, monitor, messages } = setup();
    await monitor.start();
    const manual = monitor.requestRetrain('north', 'camera moved', 'cli:alice');
    const pending = () => (monitor.health().detail as { retrainPending: number }).retrainPending;
    expect(pending()).toBe(1);
    expect(manual).toMatchObject({ alreadyPending: false, request: { state: 'pending', trigger: 'manual', reason: 'camera moved' } });
    expect(monitor.requestRetrain('north', 'again', 'cli:bob').alreadyPending).toBe(true);
    const acked = monitor.acknowledge(manual.request.requestId, 'mqtt:pipeline')!;
    expect(acked.state).toBe('acknowledged');
    expect(pending()).toBe(0);
    expect(monitor.acknowledge('no-such-request', 'x')).toBeUndefined();
    const audit = db.prepare('SELECT from_state, to_state, actor FROM retrain_transitions ORDER BY id').all();
    expect(audit).toEqual([
      { from_state: null, to_state: 'pending', actor: 'cli:alice' },
      { from_state: 'pending', to_state: 'acknowledged', actor: 'mqtt:pipeline' },
    ]);
    const again = monitor.requestRetrain('north', 'still bad', 'cli:alice').request;
    monitor.modelActivated({ id: MODEL.id, version: '1.1.0' });
    expect(monitor.snapshot().retrain.find((request) => request.requestId === again.requestId)!.state).toBe('superseded');
    expect(pending()).toBe(0);
    expect(messages(topics.retrain).map((message) => (message.payload as RetrainPayload).state)).toEqual(['pending', 'acknowledged', 'pending', 'superseded']);
    await monitor.stop();
  });

  it('feedback is idempotent by item id, a later verdict on a detection replaces the earlier one, and bad batches store nothing', async () => {
    const { db, monitor } = setup();
    await monitor.start();
    const [a, b] = insertResults(db, 2);
    const count = () => (db.prepare('SELECT count(*) AS n FROM feedback').get() as { n: number }).n;
    expect(monitor.acceptFeedback([{ id: 'x1', resultId: a!, detection: 1, verdict: 'correct' }], 'mqtt', false)).toMatchObject({ stored: 1 });
    expect(monitor.acceptFeedback([{ id: 'x1', resultId: a!, detection: 1, verdict: 'correct' }], 'mqtt', false)).toMatchObject({
      stored: 0,
      duplicates: 1,
      items: [{ id: 'x1', status: 'duplicate' }],
    });
    expect(monitor.acceptFeedback([{ id: 'x2', resultId: a!, detection: 1, verdict: 'wrong-type', trueType: 'van' }], 'mqtt', false)).toMatchObject({
      replaced: 1,
    });
    expect(count()).toBe(1);
    const refused = (items: FeedbackItem[]): string | undefined => {
      try {
        monitor.acceptFeedback(items, 'mqtt', false);
        return undefined;
      } catch (error) {
        return isAgentError(error) ? error.code : String(error);
      }
    };
    // One bad item in a batch: the good one before it is not stored either.
    expect(
      refused([
        { id: 'ok', resultId: b!, detection: 0, verdict: 'correct' },
        { id: 'bad', resultId: 'nope', detection: 0, verdict: 'correct' },
      ]),
    ).toBe('FEEDBACK_UNKNOWN_RESULT');
    expect(
      refused([
        { id: 'ok', resultId: b!, detection: 0, verdict: 'correct' },
        { id: 'far', resultId: b!, detection: 3, verdict: 'correct' },
      ]),
    ).toBe('FEEDBACK_DETECTION_OUT_OF_RANGE');
    expect(count()).toBe(1);
    // Fleet feedback skips what is not this device's.
    expect(
      monitor.acceptFeedback(
        [
          { id: 'f1', resultId: 'elsewhere', detection: 0, verdict: 'correct' },
          { id: 'f2', resultId: b!, verdict: 'missed', type: 'bus', box: [0.1, 0.2, 0.3, 0.4] },
        ],
        'fleet',
        true,
      ),
    ).toMatchObject({
      stored: 1,
      notMine: 1,
    });
    expect(db.prepare("SELECT verdict, true_type, box FROM feedback WHERE feedback_id = 'f2'").get()).toEqual({
      verdict: 'missed',
      true_type: 'bus',
      box: '[0.1,0.2,0.3,0.4]',
    });
    await monitor.stop();
  });
});
