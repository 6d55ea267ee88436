import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { packageRoot } from '../../agent/paths.js';
import { freePort } from '../support/free-port.js';
import { killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-readme-');
const BIN = 'node dist/agent/cli/bin.js';

/** The commands of the README's "Running it for real" block, as written (comments dropped). */
function readmeCommands(): string[][] {
  const readme = fs.readFileSync(path.join(packageRoot(), 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Running it for real'));
  const block = /```sh\n([\s\S]*?)```/.exec(section.slice(0, section.indexOf('\n## ', 5)))![1]!;
  return block
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line.startsWith(BIN))
    .map((line) => line.slice(BIN.length).trim().split(/\s+/));
}

describe('the README\'s "Running it for real" commands, after the demo', () => {
  const running: AgentProcess[] = [];
  afterEach(async () => {
    for (const agent of running.splice(0)) await killIfRunning(agent);
  });

  it("each runs as written from a checkout where `demo` ran (cwd with dist/, the demo's ./cctv-agent.yaml and ./data)", async () => {
    const commands = readmeCommands();
    expect(commands.length).toBeGreaterThanOrEqual(6);
    // A working directory like a checkout: dist/ is there, and the demo writes beside it.
    const cwd = tempDir();
    fs.symlinkSync(path.join(packageRoot(), 'dist'), path.join(cwd, 'dist'));
    // The demo's embedded broker on a free port (1883 may be taken here); telemetry every 2 s.
    const env = { CCTV_MQTT__EMBEDDED_BROKER__PORT: String(await freePort()), CCTV_TELEMETRY__INTERVAL_SECONDS: '2', MALLOC_MMAP_THRESHOLD_: '131072' };
    const run = (args: string[]): AgentProcess => {
      const child = spawnAgent(args, { cwd, env });
      running.push(child);
      return child;
    };

    const demo = run(['demo']);
    await demo.waitForLog((line) => line.msg === 'cctv-agent running', 60_000);
    expect(fs.readFileSync(path.join(cwd, 'cctv-agent.yaml'), 'utf8')).toMatch(/^# Written by `cctv-agent demo`/);
    // Telemetry samples every 2 s: wait for two, so `telemetry --since 1h` has a log to show.
    await new Promise((resolve) => setTimeout(resolve, 5000));

    const report: string[] = [];
    for (const args of commands.filter((command) => command[0] !== 'run')) {
      const child = run(args);
      if (args.includes('--follow')) {
        // Runs until stopped: one JSON line per new sample is the proof it works.
        const deadline = Date.now() + 15_000;
        while (!child.stdout().includes('\n') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
        child.kill('SIGINT');
        await child.exited;
        const first = child.stdout().split('\n')[0]!;
        expect(() => JSON.parse(first), `${args.join(' ')}: ${child.stderr()}`).not.toThrow();
        report.push(`${args.join(' ')}: ${first.slice(0, 80)}…`);
        continue;
      }
      const { code } = await child.exited;
      expect(code, `${args.join(' ')} exited ${code}: ${child.stderr()}`).toBe(0);
      expect(child.stdout().length, `${args.join(' ')} printed nothing`).toBeGreaterThan(0);
      report.push(`${args.join(' ')}: exit 0, ${child.stdout().split('\n').length} lines`);
    }
    demo.kill('SIGINT');
    expect((await demo.exited).code).toBe(0);

    // The agent itself on the demo's config, stopped as systemd would.
    const runArgs = commands.find((command) => command[0] === 'run')!;
    const agent = run(runArgs);
    await agent.waitForLog((line) => line.msg === 'cctv-agent running', 60_000);
    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    report.push(`${runArgs.join(' ')}: ran, stopped with exit 0`);
    console.log(report.join('\n'));
  }, 240_000);
});
