import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DeviceSensors } from '../../agent/telemetry/device-sensors.js';
import { writeFakeSysfs } from '../support/fake-sysfs.js';

const roots: string[] = [];
const tempRoot = (): string => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-sysfs-'));
  roots.push(root);
  return root;
};
afterAll(() => {
  for (const root of roots) fs.rmSync(root, { recursive: true, force: true });
});

describe('device sensors from sysfs (hwmon, IIO)', () => {
  it('reads hwmon temperature and humidity, IIO pressure, temperature and a three-axis accelerometer in their units', async () => {
    const root = tempRoot();
    writeFakeSysfs(root);
    const unexpected: string[] = [];
    const readings = await new DeviceSensors(root, (file) => unexpected.push(file)).read();
    expect(unexpected).toEqual([]);
    expect(readings).toEqual([
      { source: 'hwmon', device: 'cpu_thermal', channel: 'temp1', kind: 'temperature', unit: '°C', value: 48.312, axes: null },
      { source: 'hwmon', device: 'sht3x', channel: 'cabinet', kind: 'temperature', unit: '°C', value: 31.25, axes: null },
      { source: 'hwmon', device: 'sht3x', channel: 'humidity1', kind: 'humidity', unit: '%RH', value: 64.5, axes: null },
      { source: 'iio', device: 'bmp280', channel: 'temp', kind: 'temperature', unit: '°C', value: 29.87, axes: null },
      { source: 'iio', device: 'bmp280', channel: 'pressure', kind: 'pressure', unit: 'kPa', value: 101.325, axes: null },
      {
        source: 'iio',
        device: 'lis3dh',
        channel: 'accel',
        kind: 'acceleration',
        unit: 'm/s²',
        value: null,
        // raw × the shared scale: about 1 g on z.
        axes: { x: 0.153, y: -0.306, z: 9.806 },
      },
    ]);
  });

  it('a box without sensors (no hwmon, no IIO, or no sysfs at all) has none and reports nothing', async () => {
    const unexpected: string[] = [];
    const empty = tempRoot();
    expect(await new DeviceSensors(empty, (file) => unexpected.push(file)).read()).toEqual([]);
    expect(await new DeviceSensors(path.join(empty, 'no-such-sysfs'), (file) => unexpected.push(file)).read()).toEqual([]);
    // A hwmon directory with a chip that has no temperature or humidity channel.
    fs.mkdirSync(path.join(empty, 'class', 'hwmon', 'hwmon0'), { recursive: true });
    fs.writeFileSync(path.join(empty, 'class', 'hwmon', 'hwmon0', 'name'), 'fan_only\n');
    fs.writeFileSync(path.join(empty, 'class', 'hwmon', 'hwmon0', 'fan1_input'), '1200\n');
    expect(await new DeviceSensors(empty, (file) => unexpected.push(file)).read()).toEqual([]);
    expect(unexpected).toEqual([]);
  });

  it('a value that is not a number is skipped, not reported as a reading', async () => {
    const root = tempRoot();
    fs.mkdirSync(path.join(root, 'class', 'hwmon', 'hwmon0'), { recursive: true });
    fs.writeFileSync(path.join(root, 'class', 'hwmon', 'hwmon0', 'temp1_input'), 'garbage\n');
    expect(await new DeviceSensors(root).read()).toEqual([]);
  });
});
