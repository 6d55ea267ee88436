import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { agentBin, killIfRunning, spawnAgent, type AgentProcess } from '../support/agent-process.js';
import { assetPath } from '../support/assets.js';
import { writeFakeSysfs } from '../support/fake-sysfs.js';
import { useTempDir } from '../support/temp-dir.js';

const run = promisify(execFile);
const tempDir = useTempDir('cctv-e2e-sensors-');

/** Issue #17 item 7: the box's sensors in telemetry and the telemetry CLI; a box without any shows none. */
describe('device sensors in telemetry', () => {
  let agent: AgentProcess | undefined;
  afterAll(() => killIfRunning(agent));

  async function runAgent(sysfsRoot: string): Promise<{ dataDir: string; logs: AgentProcess['logs'] }> {
    const dir = tempDir();
    const dataDir = path.join(dir, 'data');
    const config = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      config,
      [
        'deviceId: sensors',
        `dataDir: ${dataDir}`,
        'cameras:',
        `  - { id: highway, url: "${assetPath('highway-cctv-320x240.mp4')}", sampleFps: 2 }`,
        `telemetry: { intervalSeconds: 1, sysfsRoot: "${sysfsRoot}" }`,
        '',
      ].join('\n'),
    );
    agent = spawnAgent(['run', '--config', config]);
    await agent.waitForLog((line) => line.msg === 'cctv-agent running', 30_000);
    await new Promise((resolve) => setTimeout(resolve, 3500)); // three telemetry samples
    agent.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    return { dataDir, logs: agent.logs };
  }

  it('a box with hwmon and IIO sensors: they are in the stored sample and in cctv-agent telemetry (text and --json)', async () => {
    const sysfs = path.join(tempDir(), 'sys');
    writeFakeSysfs(sysfs);
    const { dataDir } = await runAgent(sysfs);
    const json = JSON.parse((await run(process.execPath, [agentBin(), 'telemetry', '--data-dir', dataDir, '--json'])).stdout) as {
      latest: { sample: { system: { sensors: Array<{ device: string; kind: string; value: number | null; axes: unknown }> } } };
    };
    const sensors = json.latest.sample.system.sensors;
    expect(sensors.map((s) => `${s.device}/${s.kind}`)).toEqual([
      'cpu_thermal/temperature',
      'sht3x/temperature',
      'sht3x/humidity',
      'bmp280/temperature',
      'bmp280/pressure',
      'lis3dh/acceleration',
    ]);
    expect(sensors.find((s) => s.kind === 'humidity')!.value).toBe(64.5);
    expect(sensors.find((s) => s.kind === 'acceleration')!.axes).toEqual({ x: 0.153, y: -0.306, z: 9.806 });
    const text = (await run(process.execPath, [agentBin(), 'telemetry', '--data-dir', dataDir])).stdout;
    expect(text).toContain('sensors (latest sample):');
    expect(text).toContain('hwmon sht3x humidity1 (humidity): 64.5 %RH');
    expect(text).toContain('iio bmp280 pressure (pressure): 101.325 kPa');
    expect(text).toContain('iio lis3dh accel (acceleration): x 0.153 y -0.306 z 9.806 m/s²');
  }, 90_000);

  it('a box without sensors: none in telemetry, no sensor lines, and no error or warning logged about them', async () => {
    const empty = path.join(tempDir(), 'sys');
    fs.mkdirSync(empty);
    const { dataDir, logs } = await runAgent(empty);
    const json = JSON.parse((await run(process.execPath, [agentBin(), 'telemetry', '--data-dir', dataDir, '--json'])).stdout) as {
      latest: { sample: { system: { sensors: unknown[] } } };
    };
    expect(json.latest.sample.system.sensors).toEqual([]);
    const text = (await run(process.execPath, [agentBin(), 'telemetry', '--data-dir', dataDir])).stdout;
    expect(text).not.toContain('sensors (latest sample)');
    expect(logs.filter((line) => /sensor/i.test(JSON.stringify(line)) && (line.level === 'warn' || line.level === 'error'))).toEqual([]);
  }, 90_000);
});
