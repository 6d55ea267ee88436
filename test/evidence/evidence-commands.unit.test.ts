import crypto from 'node:crypto';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { evidenceSchema } from '../../agent/config/monitor-schema.js';
import { evidenceGetCommandHandler, evidenceListCommandHandler } from '../../agent/evidence/evidence-commands.js';
import { EvidenceService } from '../../agent/evidence/evidence-service.js';
import type { InferenceResult } from '../../agent/inference/result.js';
import type { CommandHandler } from '../../agent/mqtt/commands.js';
import { openDatabase } from '../../agent/storage/database.js';
import { captureLogger } from '../support/capture-log.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-evidence-commands-');

function result(seq: number, cameraId = 'north'): InferenceResult {
  return {
    cameraId,
    seq,
    capturedAt: 1_700_000_000_000 + seq * 1000,
    model: { id: 'm', version: '1' },
    task: 'detection',
    vehicles: [{ type: 'truck', label: 'truck', score: 0.8, box: [0.1, 0.1, 0.3, 0.3] }],
    inferenceMs: 5,
  };
}

/** Through the handler's own schema, as the command router runs it. */
const run = (handler: CommandHandler, args: unknown): Promise<unknown> => handler.run(handler.args.parse(args));

async function held(samples: number) {
  const dir = tempDir();
  const db = openDatabase(path.join(dir, 'agent.db'));
  const service = new EvidenceService({
    db: () => db,
    dir: path.join(dir, 'evidence'),
    config: evidenceSchema.parse({ randomShare: 1 }),
    cropOf: () => null,
    recordEvent: () => undefined,
    random: () => 0,
    log: captureLogger().log,
  });
  await service.start();
  // Noise, so the JPEG spans several chunks.
  const data = crypto.randomBytes(120 * 90 * 3);
  for (let seq = 0; seq < samples; seq++) {
    service.offer(
      result(seq, seq % 2 === 0 ? 'north' : 'south'),
      () => ({ kind: 'rgb' as const, width: 120, height: 90, channels: 3 as const, data }),
      `r${seq}`,
    );
    await service.idle();
  }
  return { service, db };
}

describe('evidence-list and evidence-get command handlers', () => {
  it('lists oldest first, filtered and paged, with the totals and randomCompleteSince', async () => {
    const { service } = await held(5);
    const list = evidenceListCommandHandler(service);
    const page = (await run(list, { limit: 2 })) as {
      samples: Array<{ resultId: string; reason: string; detections: number }>;
      next: string | null;
      totals: { samples: number };
    };
    expect(page.samples.map((sample) => sample.resultId)).toEqual(['r0', 'r1']);
    expect(page.samples[0]).toMatchObject({ reason: 'random', detections: 1, width: 120, height: 90, crop: null, disputed: false });
    expect(page.totals.samples).toBe(5);
    const rest = (await run(list, { limit: 10, after: page.next })) as { samples: Array<{ resultId: string }>; next: string | null };
    expect(rest.samples.map((sample) => sample.resultId)).toEqual(['r2', 'r3', 'r4']);
    expect(rest.next).toBeNull();
    const south = (await run(list, { cameraId: 'south' })) as { samples: Array<{ resultId: string }>; randomCompleteSince: string | null };
    expect(south.samples.map((sample) => sample.resultId)).toEqual(['r1', 'r3']);
    expect(south.randomCompleteSince).not.toBeNull();
    service.markDisputed(['r3']);
    expect(((await run(list, { disputed: true })) as { samples: Array<{ resultId: string }> }).samples.map((sample) => sample.resultId)).toEqual(['r3']);
    await service.stop();
  });

  it('gets a sample in chunks of at most maxChunkBytes that reassemble to the file, sha256 of the whole; unknown ids and offsets refused', async () => {
    const { service, db } = await held(1);
    const get = evidenceGetCommandHandler(service, 4096);
    const { sample_id: sampleId, bytes } = db.prepare('SELECT sample_id, bytes FROM evidence').get() as { sample_id: string; bytes: number };
    const chunks: Buffer[] = [];
    let offset: number | null = 0;
    let sha256 = '';
    while (offset !== null) {
      const reply = (await run(get, { sampleId, offset })) as { chunk: string; next: number | null; sha256: string; vehicles: unknown[]; offset: number };
      expect(reply.offset).toBe(offset);
      expect(reply.vehicles).toEqual(result(0).vehicles);
      const chunk = Buffer.from(reply.chunk, 'base64');
      expect(chunk.length).toBeLessThanOrEqual(4096);
      chunks.push(chunk);
      sha256 = reply.sha256;
      offset = reply.next;
    }
    const whole = Buffer.concat(chunks);
    expect(chunks.length).toBeGreaterThan(1);
    expect(whole.length).toBe(bytes);
    expect(crypto.createHash('sha256').update(whole).digest('hex')).toBe(sha256);
    await expect(run(get, { sampleId: 'nope' })).rejects.toMatchObject({ code: 'EVIDENCE_NOT_FOUND' });
    await expect(run(get, { sampleId, offset: bytes + 1 })).rejects.toMatchObject({ code: 'COMMAND_INVALID' });
    await service.stop();
    await expect(run(get, { sampleId })).rejects.toMatchObject({ code: 'COMMAND_FAILED' });
  });
});
