import type crypto from 'node:crypto';
import type { ModelUpdatesConfig } from '../config/model-updates-schema.js';
import { AgentError } from '../errors.js';
import { keyIdOf, loadPublicKey } from './keys.js';
import type { TrustPolicy } from './verify.js';

/**
 * The trusted keys of the config, each checked against its stated id: a key pasted under the
 * wrong id is a config error at startup, not a silent refusal of every bundle later.
 */
export function trustPolicy(config: Pick<ModelUpdatesConfig, 'trustedKeys' | 'allowUnsigned'>): TrustPolicy {
  const keys = new Map<string, crypto.KeyObject>();
  config.trustedKeys.forEach((entry, index) => {
    const key = loadPublicKey(entry.publicKey, `modelUpdates.trustedKeys.${index}.publicKey`);
    const actual = keyIdOf(key);
    if (actual !== entry.id) throw new AgentError('CONFIG_INVALID', `modelUpdates.trustedKeys.${index}.id: ${entry.id} is not this key's id; it is ${actual}`);
    keys.set(entry.id, key);
  });
  return { keys, allowUnsigned: config.allowUnsigned };
}
