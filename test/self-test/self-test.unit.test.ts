import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareGolden, type GoldenVehicle } from '../../agent/self-test/golden.js';
import { SelfTestService } from '../../agent/self-test/self-test-service.js';
import type { AgentEvent } from '../../agent/storage/event-schema.js';
import { captureLogger } from '../support/capture-log.js';

const tolerance = { score: 0.12, iou: 0.6, decisiveScore: 0.5 };
const car = (score: number, x = 0.1): GoldenVehicle => ({ type: 'car', score, box: [x, 0.1, 0.2, 0.2] });

describe('golden comparison', () => {
  it('the same vehicles within tolerance match; near-threshold vehicles may come and go', () => {
    const expected = [car(0.8, 0.1), car(0.45, 0.6)];
    // Score moved by 0.1 (another CPU's int8 kernels), box moved a little, the weak one gone.
    expect(compareGolden('a.jpg', expected, [{ type: 'car', score: 0.7, box: [0.11, 0.1, 0.2, 0.2] }], tolerance)).toEqual([]);
    // A weak unexpected vehicle (under decisive + tolerance) is not a mismatch either.
    expect(compareGolden('a.jpg', expected, [car(0.8, 0.1), car(0.55, 0.5)], tolerance)).toEqual([]);
  });

  it('a decisive vehicle missing, a score beyond tolerance, a clear unexpected vehicle, a changed type: each a mismatch', () => {
    const expected = [car(0.8, 0.1)];
    expect(compareGolden('a.jpg', expected, [], tolerance)).toMatchObject([{ problem: 'missing' }]);
    expect(compareGolden('a.jpg', expected, [car(0.6, 0.1)], tolerance)).toMatchObject([{ problem: 'score', found: 0.6 }]);
    expect(compareGolden('a.jpg', expected, [car(0.8, 0.1), car(0.9, 0.6)], tolerance)).toMatchObject([{ problem: 'unexpected' }]);
    expect(compareGolden('a.jpg', expected, [{ ...car(0.8, 0.1), type: 'truck' }], tolerance).map((m) => m.problem)).toEqual(['missing', 'unexpected']);
  });
});

describe('self-test service (injected model, image runner and hash)', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
  });

  function setup(found: GoldenVehicle[], loadedHash: string | undefined) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-self-test-'));
    dirs.push(dir);
    fs.writeFileSync(path.join(dir, 'img.jpg'), 'not read: the runner is injected');
    const goldenFile = path.join(dir, 'golden.json');
    fs.writeFileSync(goldenFile, JSON.stringify({ schemaVersion: 1, samples: [{ image: 'img.jpg', vehicles: [car(0.8)] }] }));
    const events: AgentEvent[] = [];
    const disk = { hash: 'aaa' };
    const service = new SelfTestService({
      config: { selfTest: { enabled: true, intervalHours: 6 } },
      model: () => ({ id: 'm', version: '1', modelPath: path.join(dir, 'm.onnx'), sha256: loadedHash, goldenFile }),
      runImage: async () => found,
      assetsDir: dir,
      recordEvent: (event) => events.push(event),
      hashFile: async () => disk.hash,
      log: captureLogger().log,
    });
    return { service, events, disk };
  }

  it('passes on the true model; the observation is 0', async () => {
    const { service, events } = setup([car(0.78)], 'aaa');
    const report = await service.runNow('command');
    expect(report).toMatchObject({ passed: true, code: null, file: { changed: false }, golden: { images: 1, mismatches: [] } });
    expect(service.observation({ modelId: 'm', modelVersion: '1' })).toMatchObject({ value: 0, n: 1 });
    expect(events).toEqual([]);
  });

  it('a file changed on disk fails with SELF_TEST_FILE_CHANGED and an event; fixed again, it passes with a recovery event', async () => {
    const { service, events, disk } = setup([car(0.8)], undefined);
    expect((await service.runNow('start')).passed).toBe(true); // the first hash is the baseline
    disk.hash = 'bbb';
    const failed = await service.runNow('interval');
    expect(failed).toMatchObject({ passed: false, code: 'SELF_TEST_FILE_CHANGED', file: { loaded: 'aaa', onDisk: 'bbb', changed: true } });
    expect(service.observation({ modelId: 'm', modelVersion: '1' })).toMatchObject({ value: 1 });
    expect(events.map((e) => [e.kind, e.code])).toEqual([['self-test-failed', 'SELF_TEST_FILE_CHANGED']]);
    disk.hash = 'aaa';
    expect((await service.runNow('command')).passed).toBe(true);
    expect(events.at(-1)!.kind).toBe('self-test-passed');
  });

  it('a golden mismatch fails with SELF_TEST_MISMATCH; a missing golden image with SELF_TEST_UNAVAILABLE', async () => {
    const { service } = setup([car(0.3)], 'aaa');
    expect(await service.runNow('command')).toMatchObject({ passed: false, code: 'SELF_TEST_MISMATCH', golden: { mismatches: [{ problem: 'score' }] } });
    const other = setup([car(0.8)], 'aaa');
    fs.rmSync(path.join(path.dirname(other.service['deps'].model()!.goldenFile!), 'img.jpg'));
    expect(await other.service.runNow('command')).toMatchObject({ passed: false, code: 'SELF_TEST_UNAVAILABLE' });
  });

  it('another model version has no observation (its alert key is not this one)', async () => {
    const { service } = setup([car(0.8)], 'aaa');
    await service.runNow('command');
    expect(service.observation({ modelId: 'm', modelVersion: '2' })).toBeNull();
  });
});
