import { z } from 'zod';

/**
 * The `modelUpdates` section of the config (part of the one schema in schema.ts): signed model
 * bundles, the on-device registry, push over MQTT and pull over HTTP (docs/model-updates.md).
 */
export const modelUpdatesSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Accept model updates (push over MQTT, pull over HTTP) and keep the registry.'),
  })
  .prefault({});

export type ModelUpdatesConfig = z.output<typeof modelUpdatesSchema>;
