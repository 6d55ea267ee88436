import { z } from 'zod';

const trustedKeySchema = z.strictObject({
  id: z
    .string()
    .regex(/^[0-9a-f]{16}$/, { error: 'a key id is 16 lower-case hex digits, as `cctv-agent model keygen` prints it' })
    .describe('The key id (the first 16 hex digits of the sha256 of the raw public key).'),
  publicKey: z.string().min(40).describe('The ed25519 public key: PEM (SPKI), or the 32 raw bytes in base64, as written by `cctv-agent model keygen`.'),
  comment: z.string().optional().describe('Who holds the private key, and since when: for the person rotating keys.'),
});

/**
 * The `modelUpdates` section of the config (part of the one schema in schema.ts): signed model
 * bundles, the on-device registry, push over MQTT and pull over HTTP (docs/model-updates.md).
 */
export const modelUpdatesSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Accept model updates (push over MQTT, pull over HTTP) and keep the registry.'),
    trustedKeys: z
      .array(trustedKeySchema)
      .max(16)
      .default([])
      .describe('Public keys whose signatures are accepted. Rotate by adding the new key, re-signing, then removing the old one.'),
    allowUnsigned: z
      .boolean()
      .default(false)
      .describe('Accept bundles without a signature. For a lab only: every unsigned bundle is logged as a warning and audited.'),
    maxBundleMB: z.number().positive().max(4096).default(200).describe('Largest bundle accepted, pushed or pulled.'),
    keepVersions: z.number().int().min(2).max(20).default(3).describe('Model versions kept on disk (the active one and the previous ones).'),
    push: z
      .strictObject({
        maxChunkBytes: z.number().int().min(1024).max(1_048_576).default(262_144).describe('Largest chunk a push may send.'),
        maxChunks: z.number().int().min(1).max(1_000_000).default(20_000).describe('Most chunks one push may announce.'),
        idleTimeoutSeconds: z
          .number()
          .positive()
          .max(3600)
          .default(60)
          .describe('A push with no chunk for this long is abandoned (its .part kept for a resume).'),
      })
      .prefault({}),
    pull: z
      .strictObject({
        timeoutSeconds: z.number().positive().max(3600).default(30).describe('A download with no byte for this long fails (the .part is kept for a resume).'),
        announcements: z
          .enum(['after-retrain', 'always', 'ignore'])
          .default('after-retrain')
          .describe(
            'A newer version of the running model announced on <prefix>/fleet/models/<model id>: pulled once a retrain request is pending (after-retrain), always, or never (ignore; the model-pull command still works).',
          ),
        maxAttempts: z
          .number()
          .int()
          .min(1)
          .max(100)
          .default(5)
          .describe('Download attempts (each resuming the .part) before the pull is given up until the next restart or announcement.'),
      })
      .prefault({}),
  })
  .prefault({});

export type ModelUpdatesConfig = z.output<typeof modelUpdatesSchema>;
export type TrustedKey = z.output<typeof trustedKeySchema>;
