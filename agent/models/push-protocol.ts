import crypto from 'node:crypto';
import { z } from 'zod';

/**
 * Push over MQTT (docs/model-updates.md): `model-push-begin` announces the bundle (size,
 * sha256, chunk size and count) and answers with the chunks still missing (all of them, or
 * fewer when resuming); each chunk goes as a binary message of [sha256 of the data (32 bytes)]
 * [data] on <base>/model/push/<transferId>/chunk/<index>; the device acknowledges every chunk
 * on .../ack, which paces the sender; `model-push-end` asks for the outcome (or names the chunks
 * still missing), and the outcome of verification and activation comes on .../result.
 */

/** A transfer id is the first 32 hex digits of the bundle's sha256: a resumed push finds its .part. */
export const transferIdOf = (sha256: string): string => sha256.slice(0, 32);

export const pushBeginArgsSchema = z.strictObject({
  transferId: z.string().regex(/^[0-9a-f]{32}$/),
  size: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  chunkSize: z.number().int().positive(),
  chunks: z.number().int().positive(),
  activate: z.boolean().default(true).describe('Activate the version once verified (false: keep it verified for `model activate`).'),
});
export type PushBeginArgs = z.output<typeof pushBeginArgsSchema>;

export const pushBeginResultSchema = z.strictObject({
  transferId: z.string(),
  updateId: z.string(),
  missing: z.array(z.number().int()).describe('Chunk indexes still needed: every one for a new push, fewer when resuming.'),
  window: z.number().int().describe('Chunks the sender may have unacknowledged at once.'),
});

export const pushEndArgsSchema = z.strictObject({ transferId: z.string().regex(/^[0-9a-f]{32}$/) });
export const pushEndResultSchema = z.strictObject({
  transferId: z.string(),
  state: z.enum(['verifying', 'done']).describe('verifying: the outcome follows on <base>/model/push/<transferId>/result.'),
});

export const pushAckSchema = z.strictObject({
  transferId: z.string(),
  index: z.number().int(),
  ok: z.boolean(),
  code: z.string().nullable().describe('MODEL_PUSH_CHUNK_INVALID for a chunk failing its checksum or out of range.'),
  received: z.number().int().describe('Chunks held so far.'),
});
export type PushAck = z.output<typeof pushAckSchema>;

export const pushResultSchema = z.strictObject({
  transferId: z.string(),
  updateId: z.string(),
  ok: z.boolean(),
  code: z.string().nullable(),
  message: z.string().nullable(),
  model: z.strictObject({ id: z.string(), version: z.string() }).nullable(),
  state: z.string().nullable().describe('The version state reached: verified or active.'),
});
export type PushResult = z.output<typeof pushResultSchema>;

const HASH_BYTES = 32;

export function encodeChunk(data: Buffer): Buffer {
  return Buffer.concat([crypto.createHash('sha256').update(data).digest(), data]);
}

/** The chunk's data when its checksum holds, else undefined. */
export function decodeChunk(payload: Buffer): Buffer | undefined {
  if (payload.length < HASH_BYTES) return undefined;
  const data = payload.subarray(HASH_BYTES);
  const expected = payload.subarray(0, HASH_BYTES);
  return crypto.createHash('sha256').update(data).digest().equals(expected) ? data : undefined;
}

/** The chunk index and transfer id of a chunk topic <base>/model/push/<transferId>/chunk/<index>. */
export function parseChunkTopic(topic: string): { transferId: string; index: number } | undefined {
  const match = /\/model\/push\/([0-9a-f]{32})\/chunk\/(\d{1,9})$/.exec(topic);
  return match ? { transferId: match[1]!, index: Number(match[2]) } : undefined;
}
