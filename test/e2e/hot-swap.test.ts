import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { manifestsDir } from '../../agent/paths.js';
import { assetPath } from '../support/assets.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-swap-');
let agent: AgentProcess | undefined;

afterEach(async () => {
  await killIfRunning(agent);
  agent = undefined;
});

const INT8 = path.join(manifestsDir(), 'yolox-nano-int8.json');
const FLOAT = path.join(manifestsDir(), 'yolox-nano.json');

function writeConfig(file: string, dir: string, manifest: string): void {
  fs.writeFileSync(
    file,
    [
      `dataDir: ${path.join(dir, 'data')}`,
      'mqtt: { enabled: false }',
      `model: { manifest: ${manifest} }`,
      'storage: { flushIntervalMs: 100 }',
      'cameras:',
      `  - { id: cam, url: ${assetPath('highway-cctv-320x240.mp4')}, sampleFps: 5 }`,
      '',
    ].join('\n'),
  );
}

describe('hot swap in a running agent (SIGHUP with another model manifest)', () => {
  it('20 swaps during a running stream: no frame lost, none processed twice; RSS growth reported', async () => {
    const dir = tempDir();
    const config = path.join(dir, 'config.yaml');
    writeConfig(config, dir, INT8);
    // As the systemd unit runs it: fewer glibc arenas, and a fixed mmap threshold so a released
    // session's large buffers go back to the system instead of staying in the heap.
    agent = spawnAgent(['run', '--config', config], { env: { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' } });
    await agent.waitForLog((line) => line.msg === 'camera state' && line['to'] === 'streaming', 30_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));

    const rss: number[] = [];
    for (let swap = 1; swap <= 20; swap++) {
      writeConfig(config, dir, swap % 2 === 1 ? FLOAT : INT8);
      agent.kill('SIGHUP');
      const swapped = await agent.waitForLog((line) => line.msg === 'model swapped' && line['swaps'] === swap, 20_000);
      rss.push(swapped['rssMb'] as number);
    }

    // A bad model is refused while the current one keeps serving.
    const broken = path.join(dir, 'broken.onnx');
    fs.writeFileSync(broken, fs.readFileSync(assetPath('yolox-nano.onnx')).subarray(0, 50_000));
    const brokenManifest = JSON.parse(fs.readFileSync(FLOAT, 'utf8')) as Record<string, unknown>;
    brokenManifest['file'] = broken;
    delete brokenManifest['sha256'];
    fs.writeFileSync(path.join(dir, 'broken.json'), JSON.stringify(brokenManifest));
    writeConfig(config, dir, path.join(dir, 'broken.json'));
    agent.kill('SIGHUP');
    const refused = await agent.waitForLog((line) => line.msg === 'model swap refused: keeping the running model');
    expect(refused['problem']).toMatch(/MODEL_LOAD_FAILED/);
    await new Promise((resolve) => setTimeout(resolve, 1500));

    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    const stopped = agent.logs.find((line) => line.msg === 'camera state' && line['to'] === 'stopped')!;
    const framesIn = stopped['framesIn'] as number;
    const dropped = stopped['dropped'] as number;

    const db = new Database(path.join(dir, 'data', 'agent.db'), { readonly: true });
    const rows = db.prepare('SELECT seq, model_id FROM results ORDER BY id').all() as Array<{ seq: number; model_id: string }>;
    db.close();
    const seqs = rows.map((row) => row.seq);
    // RSS saw-tooths by 30-40 MB as malloc arenas fill and are trimmed (a cycle of 5-12 swaps), so
    // medians of five readings moved by up to 20 MB between runs without any trend. A leak raises
    // the floor: compare the lowest reading of the last ten swaps with that of the first ten.
    const floor = (values: number[]): number => Math.min(...values);
    const growth = floor(rss.slice(10)) - floor(rss.slice(0, 10));
    console.log(
      `20 swaps: ${framesIn} frames in, ${dropped} dropped by the latest-wins slot, ${rows.length} results; RSS after each swap (MB): ${rss.join(', ')}; growth from swap 1 to 20: ${rss.at(-1)! - rss[0]!} MB; lowest of the last 10 minus lowest of the first 10: ${growth} MB`,
    );
    expect(growth).toBeLessThan(15);
    expect(new Set(seqs).size).toBe(seqs.length); // none processed twice
    expect(rows.length + dropped).toBe(framesIn); // every frame in is a result or a counted drop
    expect(dropped).toBe(0); // and at 5 fps the swaps cost no frame
    expect(new Set(rows.map((row) => row.model_id))).toEqual(new Set(['yolox-nano-int8', 'yolox-nano']));
    expect(rows.at(-1)!.model_id).toBe('yolox-nano-int8'); // the refused model never served
  }, 240_000);
});
