import { describe, expect, it } from 'vitest';
import { configSchema, type AgentConfig } from '../../agent/config/schema.js';
import { AgentError } from '../../agent/errors.js';
import type { ResolvedModel } from '../../agent/inference/model-files.js';
import { applyReload, type Reloadable } from '../../agent/lifecycle/config-reload.js';
import { captureLogger } from '../support/capture-log.js';

const config = (raw: Record<string, unknown>): AgentConfig => configSchema.parse({ deviceId: 'dev', cameras: [{ id: 'a', url: '/x.mp4' }], ...raw });
const model = (id: string): ResolvedModel =>
  ({ manifest: { id, version: '1' }, manifestPath: `/m/${id}.json`, modelPath: `/m/${id}.onnx`, labels: [] }) as unknown as ResolvedModel;

function fakeAgent(refuse = false): Reloadable & { swaps: string[]; cameraLists: string[][] } {
  const agent = {
    swaps: [] as string[],
    cameraLists: [] as string[][],
    swapModel: async (resolved: ResolvedModel, trigger: 'sighup') => {
      if (refuse) throw new AgentError('MODEL_MISMATCH', 'bad model');
      agent.swaps.push(`${resolved.manifest.id}:${trigger}`);
    },
    reconfigureCameras: async (cameras: AgentConfig['cameras']) => {
      agent.cameraLists.push(cameras.map((camera) => camera.id));
      return { added: [], removed: [], restarted: cameras.map((camera) => camera.id) };
    },
  };
  return agent;
}

describe('SIGHUP reload (applyReload)', () => {
  it("swaps the model through the agent's one swap path when its setting changed, and applies the cameras", async () => {
    const running = config({});
    const agent = fakeAgent();
    const next = config({
      model: { manifest: '/m/other.json' },
      cameras: [
        { id: 'a', url: '/x.mp4' },
        { id: 'b', url: '/y.mp4' },
      ],
    });
    const outcome = await applyReload({ config: next, model: model('other') }, running, agent, captureLogger().log);
    expect(outcome).toMatchObject({ model: 'swapped', needRestart: [] });
    expect(agent.swaps).toEqual(['other:sighup']);
    expect(agent.cameraLists).toEqual([['a', 'b']]);
    expect(running.model.manifest).toBe('/m/other.json');
    expect(running.cameras.map((camera) => camera.id)).toEqual(['a', 'b']);
  });

  it('keeps the running model when the new one is refused, names keys that need a restart, and still applies the cameras', async () => {
    const running = config({});
    const agent = fakeAgent(true);
    const { log, lines } = captureLogger();
    const next = config({ model: { manifest: '/m/bad.json' }, dataDir: '/elsewhere', storage: { flushIntervalMs: 50 } });
    const outcome = await applyReload({ config: next, model: model('bad') }, running, agent, log);
    expect(outcome.model).toBe('refused');
    expect(outcome.needRestart.sort()).toEqual(['dataDir', 'storage']);
    expect(running.model.manifest).toBe('auto');
    expect(agent.cameraLists).toHaveLength(1);
    expect(lines().some((line) => line.includes('MODEL_MISMATCH') && line.includes('keeping the running model'))).toBe(true);
  });

  it('an unchanged model is not swapped', async () => {
    const agent = fakeAgent();
    const outcome = await applyReload({ config: config({}), model: model('same') }, config({}), agent, captureLogger().log);
    expect(outcome.model).toBe('unchanged');
    expect(agent.swaps).toEqual([]);
  });
});
