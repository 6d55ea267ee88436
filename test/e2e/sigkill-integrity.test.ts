import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { assetPath } from '../support/assets.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-sigkill-');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const KILLS = Number(process.env['CCTV_SIGKILLS'] ?? 50);
const FLUSH_MS = 250;

/**
 * Issue #5: 50 SIGKILLs while two cameras write as fast as the model goes (files read faster
 * than real time). After each, the database must pass integrity_check, and what a kill costs
 * is what waited in memory for the next flush: the results captured between the last stored
 * one and the kill, reported (and bounded loosely: the machine is shared).
 */
describe(`${KILLS} SIGKILLs during heavy writes`, () => {
  let agent: AgentProcess | undefined;
  afterAll(() => killIfRunning(agent));

  it(
    'leaves a valid database every time, losing at most about one flush interval of results',
    async () => {
      const dir = tempDir();
      const dataDir = path.join(dir, 'data');
      const config = path.join(dir, 'config.yaml');
      const clip = assetPath('highway-cctv-320x240.mp4');
      fs.writeFileSync(
        config,
        [
          'deviceId: kills',
          `dataDir: ${dataDir}`,
          'cameras:',
          `  - { id: a, url: "${clip}", sampleFps: null, realtime: false, loop: true }`,
          `  - { id: b, url: "${clip}", sampleFps: null, realtime: false, loop: true }`,
          'mqtt: { enabled: false }',
          `storage: { flushIntervalMs: ${FLUSH_MS} }`,
          'telemetry: { intervalSeconds: 1 }',
          '',
        ].join('\n'),
      );

      const gapsMs: number[] = [];
      const lost: number[] = [];
      let previousRows = 0;
      for (let kill = 0; kill < KILLS; kill++) {
        agent = spawnAgent(['run', '--config', config]);
        await agent.waitForLog((line) => line.msg === 'cctv-agent running', 30_000);
        await agent.waitForLog((line) => line.msg === 'camera state' && line['to'] === 'streaming', 15_000);
        await sleep(700 + Math.random() * 1300);
        const killedAt = Date.now();
        agent.kill('SIGKILL');
        await agent.exited;

        const db = new Database(path.join(dataDir, 'agent.db'));
        expect(db.pragma('integrity_check', { simple: true }), `integrity after kill ${kill + 1}`).toBe('ok');
        const rows = (db.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n;
        const last = db.prepare('SELECT max(captured_at) AS at FROM results').get() as { at: number };
        // The rate of this run, from its own stored rows, turns the gap into results lost.
        const run = db.prepare('SELECT count(*) AS n, min(captured_at) AS first FROM results WHERE id > ?').get(previousRows) as { n: number; first: number };
        db.close();
        expect(rows, `kill ${kill + 1} stored nothing`).toBeGreaterThan(previousRows);
        const gap = killedAt - last.at;
        const rate = run.n / Math.max(0.001, (last.at - run.first) / 1000);
        gapsMs.push(gap);
        lost.push(Math.round((gap / 1000) * rate));
        previousRows = rows;
      }
      const sorted = [...gapsMs].sort((a, b) => a - b);
      const lostSorted = [...lost].sort((a, b) => a - b);
      console.log(
        `${KILLS} SIGKILLs: integrity ok every time; ${previousRows} results stored; time from the last stored result to the kill ` +
          `median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms (flush interval ${FLUSH_MS} ms); ` +
          `results lost per kill median ${lostSorted[Math.floor(lostSorted.length / 2)]}, max ${lostSorted.at(-1)}`,
      );
      // One flush interval plus the frame's own inference and a scheduling hiccup on 2 shared cores.
      expect(sorted[Math.floor(sorted.length / 2)]).toBeLessThan(FLUSH_MS + 500);
    },
    Math.max(120_000, KILLS * 15_000),
  );
});
