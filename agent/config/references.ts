import fs from 'node:fs';
import { sourceKind, sourceUrlWithCredentials } from './source-url.js';
import type { AgentConfig } from './schema.js';

/**
 * Checks what the schema cannot: that the files a config names exist and can be read.
 * Returns one line per problem, each naming the key path.
 */
export function checkReferencedFiles(config: AgentConfig): string[] {
  const problems: string[] = [];
  const readable = (file: string): boolean => {
    try {
      fs.accessSync(file, fs.constants.R_OK);
      return true;
    } catch {
      return false; // the caller reports it with the key path
    }
  };
  config.cameras.forEach((camera, index) => {
    if (sourceKind(camera.url) !== 'file') return;
    const file = sourceUrlWithCredentials(camera);
    if (!readable(file)) problems.push(`cameras.${index}.url: file ${file} does not exist or is not readable`);
  });
  const tls = config.mqtt.tls;
  if (tls) {
    for (const key of ['caFile', 'certFile', 'keyFile'] as const) {
      const file = tls[key];
      if (file !== undefined && !readable(file)) problems.push(`mqtt.tls.${key}: ${file} does not exist or is not readable`);
    }
  }
  return problems;
}
