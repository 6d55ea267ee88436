import path from 'node:path';
import { loadConfig } from '../config/load.js';

export interface DatabaseLocation {
  dataDir: string;
  file: string;
  deviceId: string | null;
}

/**
 * Where an agent's database is, as `status` finds the data directory: --data-dir alone needs no
 * config (an operator may not read it); otherwise the config from --config or the search path
 * gives dataDir, storage.fileName and deviceId (--data-dir still wins for the directory).
 */
export function locateDatabase(options: { config?: string | undefined; dataDir?: string | undefined }, env: NodeJS.ProcessEnv): DatabaseLocation {
  if (options.dataDir !== undefined && options.config === undefined) {
    return { dataDir: path.resolve(options.dataDir), file: path.resolve(options.dataDir, 'agent.db'), deviceId: null };
  }
  const { config } = loadConfig({ ...(options.config ? { file: options.config } : {}), env });
  const dataDir = path.resolve(options.dataDir ?? config.dataDir);
  return { dataDir, file: path.join(dataDir, config.storage.fileName), deviceId: config.deviceId };
}
