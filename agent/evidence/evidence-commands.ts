import crypto from 'node:crypto';
import { AgentError, systemErrorCode } from '../errors.js';
import { type CommandHandler, defineCommand } from '../mqtt/commands.js';
import { evidenceGetArgsSchema, evidenceGetResultSchema, evidenceListArgsSchema, evidenceListResultSchema, sampleSummary } from './evidence-schema.js';
import { detectionsOf, type EvidenceStore } from './evidence-store.js';
import type { SampleFiles } from './sample-files.js';

/** What the commands read: the evidence service while it runs. */
export interface EvidenceSource {
  readonly store: EvidenceStore | undefined;
  readonly sampleFiles: SampleFiles;
  randomCompleteSince(): number | null;
}

function storeOf(source: EvidenceSource): EvidenceStore {
  const store = source.store;
  if (!store) throw new AgentError('COMMAND_FAILED', 'the evidence service is not running');
  return store;
}

/** `evidence-list`: the samples held, filtered and paged, with the totals and the unbiased range. */
export function evidenceListCommandHandler(source: EvidenceSource): CommandHandler {
  return defineCommand({
    description: 'Lists the evidence samples held (JPEG + detections), oldest first, filtered by camera, reason, dispute and capture time; page with `after`.',
    args: evidenceListArgsSchema,
    result: evidenceListResultSchema,
    run: async (args) => {
      const store = storeOf(source);
      const samples = store.list({
        cameraId: args.cameraId,
        reason: args.reason,
        disputed: args.disputed,
        since: args.since === undefined ? undefined : Date.parse(args.since),
        after: args.after,
        limit: args.limit,
      });
      const since = source.randomCompleteSince();
      return {
        samples: samples.map((sample) => sampleSummary(sample, detectionsOf(sample).length)),
        next: samples.length === args.limit ? samples.at(-1)!.sampleId : null,
        totals: store.totals(),
        randomCompleteSince: since === null ? null : new Date(since).toISOString(),
      };
    },
  });
}

/**
 * `evidence-get`: one chunk of a sample's JPEG (base64, at most `maxChunkBytes`), with its
 * detections and the sha256 of the whole file; the caller asks again from `next` until null.
 */
export function evidenceGetCommandHandler(source: EvidenceSource, maxChunkBytes: number): CommandHandler {
  return defineCommand({
    description: `Fetches an evidence sample: its detections and its JPEG in chunks of at most ${maxChunkBytes} bytes (monitor.evidence.maxChunkBytes), base64, with the sha256 of the whole file; ask again from \`next\` until it is null.`,
    args: evidenceGetArgsSchema,
    result: evidenceGetResultSchema,
    run: async (args) => {
      const sample = storeOf(source).get(args.sampleId);
      if (!sample) throw new AgentError('EVIDENCE_NOT_FOUND', `no evidence sample "${args.sampleId}" on this device`);
      let jpeg: Buffer;
      try {
        jpeg = await source.sampleFiles.read(sample.file);
      } catch (error) {
        // Pruned between the lookup and the read.
        if (systemErrorCode(error) === 'ENOENT') throw new AgentError('EVIDENCE_NOT_FOUND', `evidence sample "${args.sampleId}" was just pruned`);
        throw error;
      }
      if (args.offset > jpeg.length) {
        throw new AgentError('COMMAND_INVALID', `args.offset: ${args.offset} is past the end of the ${jpeg.length}-byte file`);
      }
      const end = Math.min(jpeg.length, args.offset + maxChunkBytes);
      const vehicles = detectionsOf(sample);
      return {
        sample: sampleSummary(sample, vehicles.length),
        vehicles,
        sha256: crypto.createHash('sha256').update(jpeg).digest('hex'),
        offset: args.offset,
        chunk: jpeg.subarray(args.offset, end).toString('base64'),
        next: end < jpeg.length ? end : null,
      };
    },
  });
}
