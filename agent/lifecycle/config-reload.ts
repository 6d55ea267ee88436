import { isDeepStrictEqual } from 'node:util';
import type { AgentConfig } from '../config/schema.js';
import { errorLines } from '../errors.js';
import type { ResolvedModel } from '../inference/model-files.js';
import type { Logger } from '../log/logger.js';

/** What a reload may change while the agent runs; every other key waits for a restart. */
export const LIVE_KEYS: ReadonlyArray<keyof AgentConfig> = ['cameras', 'model'];

/** What the reload needs of the running agent. */
export interface Reloadable {
  swapModel(resolved: ResolvedModel, trigger: 'sighup'): Promise<unknown>;
  reconfigureCameras(cameras: AgentConfig['cameras']): Promise<{ added: string[]; removed: string[]; restarted: string[] }>;
}

export interface ReloadOutcome {
  /** Keys that changed but take effect at the next restart. */
  needRestart: string[];
  model: 'unchanged' | 'swapped' | 'refused';
  cameras: { added: string[]; removed: string[]; restarted: string[] };
}

/**
 * SIGHUP (systemctl reload): applies a freshly loaded config to the running agent. The model is
 * swapped when its setting changed (through the agent's one swap path, so a model changed over
 * MQTT and one changed by reload are the same operation), and only the cameras that changed are
 * restarted. `running` is updated to what now runs. A model that fails its checks is refused and
 * the running one kept; the cameras are still applied.
 */
export async function applyReload(
  next: { config: AgentConfig; model: ResolvedModel },
  running: AgentConfig,
  agent: Reloadable,
  log: Logger,
): Promise<ReloadOutcome> {
  const needRestart = (Object.keys(next.config) as Array<keyof AgentConfig>).filter(
    (key) => !LIVE_KEYS.includes(key) && !isDeepStrictEqual(next.config[key], running[key]),
  );
  if (needRestart.length > 0) log.warn({ keys: needRestart }, 'config reloaded: these changes take effect at the next restart');
  let model: ReloadOutcome['model'] = 'unchanged';
  if (!isDeepStrictEqual(next.config.model, running.model)) {
    try {
      await agent.swapModel(next.model, 'sighup');
      running.model = next.config.model;
      model = 'swapped';
    } catch (error) {
      for (const line of errorLines(error)) log.error({ problem: line }, 'model swap refused: keeping the running model');
      model = 'refused';
    }
  }
  const cameras = await agent.reconfigureCameras(next.config.cameras);
  running.cameras = next.config.cameras;
  return { needRestart, model, cameras };
}
