import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { modelRunOutputSchema } from '../../agent/cli/model-run-output.js';
import { assetPath } from '../support/assets.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-model-run-');

/** Issue #13: `model run` must show what the live pipeline sees, not a look-alike. */
describe('cctv-agent model run', () => {
  let agent: AgentProcess | undefined;
  afterEach(async () => {
    await killIfRunning(agent);
  });

  it("on the catalog's highway frame prints the same vehicles as the live pipeline gives for that frame; --json fits its schema", async () => {
    const dir = tempDir();
    const frame = assetPath('highway-frame-t5s.png');
    const config = path.join(dir, 'config.yaml');
    // The frame as a one-frame file camera: decoded, scaled, inferred and stored by the agent.
    fs.writeFileSync(
      config,
      [
        `dataDir: ${path.join(dir, 'data')}`,
        'mqtt: { enabled: false }',
        'storage: { flushIntervalMs: 50 }',
        'cameras:',
        `  - { id: still, url: "${frame}", loop: false, realtime: false, sampleFps: null }`,
        '',
      ].join('\n'),
    );
    agent = spawnAgent(['run', '--config', config]);
    await agent.waitForLog((line) => line.msg === 'camera state' && line['to'] === 'ended', 60_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    agent.kill('SIGTERM');
    expect((await agent.exited).code, agent.stderr()).toBe(0);
    const db = new Database(path.join(dir, 'data', 'agent.db'), { readonly: true });
    const rows = db.prepare('SELECT model_id, model_version, vehicles FROM results').all() as Array<{
      model_id: string;
      model_version: string;
      vehicles: string;
    }>;
    db.close();
    expect(rows).toHaveLength(1);
    const live = JSON.parse(rows[0]!.vehicles) as unknown[];

    // The model the agent served, by id: "auto" timed int8 against float, and the agent has stopped.
    const served = ['--model', rows[0]!.model_id];
    const run = spawnAgent(['model', 'run', frame, '--config', config, ...served, '--json']);
    expect((await run.exited).code, run.stderr()).toBe(0);
    const output = modelRunOutputSchema.parse(JSON.parse(run.stdout()));
    expect(output.model).toMatchObject({ id: rows[0]!.model_id, version: rows[0]!.model_version, nms: 'class-agnostic' });
    expect(output.images).toHaveLength(1);
    expect(output.images[0]).toMatchObject({ width: 320, height: 240 });
    expect(output.images[0]!.vehicles).toEqual(live);
    expect(live.length).toBeGreaterThanOrEqual(5);

    // The text form lists the same vehicles, one line each.
    const text = spawnAgent(['model', 'run', frame, '--config', config, ...served]);
    expect((await text.exited).code).toBe(0);
    expect(text.stdout()).toContain(`highway-frame-t5s.png (320x240): ${live.length} vehicle(s)`);
    console.log(text.stdout());
  }, 120_000);

  it('a corrupt JPEG is IMAGE_UNREADABLE; an unknown model id is MODEL_NOT_FOUND; both exit 1', async () => {
    const dir = tempDir();
    const notImage = path.join(dir, 'broken.jpg');
    // A JPEG start-of-image marker followed by garbage: what a cut-off snapshot download leaves.
    fs.writeFileSync(notImage, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(200, 0x5a)]));
    const bad = spawnAgent(['model', 'run', notImage]);
    expect((await bad.exited).code).toBe(1);
    expect(bad.stderr()).toContain('IMAGE_UNREADABLE');
    const unknown = spawnAgent(['model', 'run', assetPath('highway-frame-t5s.png'), '--model', 'no-such-model']);
    expect((await unknown.exited).code).toBe(1);
    expect(unknown.stderr()).toContain('MODEL_NOT_FOUND');
  }, 60_000);
});
