import fs from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { systemErrorCode } from '../errors.js';

export const sensorKinds = ['temperature', 'humidity', 'pressure', 'acceleration', 'angularVelocity', 'magneticField'] as const;
export type SensorKind = (typeof sensorKinds)[number];

const UNITS: Record<SensorKind, string> = {
  temperature: '°C',
  humidity: '%RH',
  pressure: 'kPa',
  acceleration: 'm/s²',
  angularVelocity: 'rad/s',
  magneticField: 'gauss',
};

export const sensorReadingSchema = z.object({
  source: z.enum(['hwmon', 'iio']).describe('Linux hwmon (/sys/class/hwmon) or Industrial I/O (/sys/bus/iio/devices).'),
  device: z.string().describe('The driver name (hwmon `name`, IIO `name`), e.g. "bme280", "lis3dh".'),
  channel: z.string().describe('hwmon: temp1, humidity1, or the channel label; IIO: temp, humidityrelative, pressure, accel, anglvel, magn.'),
  kind: z.enum(sensorKinds),
  unit: z.string().describe('°C, %RH, kPa, m/s², rad/s or gauss.'),
  value: z.number().nullable().describe('Scalar sensors; null for the three-axis ones.'),
  axes: z.object({ x: z.number(), y: z.number(), z: z.number() }).nullable().describe('Accelerometer, gyroscope, magnetometer: x, y, z.'),
});
export type SensorReading = z.output<typeof sensorReadingSchema>;

/** hwmon channel prefixes and their millis scale (hwmon sysfs ABI: milli-degrees, milli-percent). */
const HWMON_CHANNELS: Array<{ prefix: string; kind: SensorKind; scale: number }> = [
  { prefix: 'temp', kind: 'temperature', scale: 0.001 },
  { prefix: 'humidity', kind: 'humidity', scale: 0.001 },
];

/** IIO scalar channels (IIO sysfs ABI units: milli-degrees, milli-percent, kilopascal). */
const IIO_SCALARS: Array<{ channel: string; kind: SensorKind; unitScale: number }> = [
  { channel: 'temp', kind: 'temperature', unitScale: 0.001 },
  { channel: 'humidityrelative', kind: 'humidity', unitScale: 0.001 },
  { channel: 'pressure', kind: 'pressure', unitScale: 1 },
];

const IIO_VECTORS: Array<{ channel: string; kind: SensorKind }> = [
  { channel: 'accel', kind: 'acceleration' },
  { channel: 'anglvel', kind: 'angularVelocity' },
  { channel: 'magn', kind: 'magneticField' },
];

/**
 * The box's own sensors, where it has them: Linux hwmon and IIO read from sysfs (a hot cabinet,
 * damp, a vibrating pole, to read beside drift in sharpness or brightness). Sampled on the
 * telemetry timer only. A box without them has none, which is not an error: a missing
 * directory or file is skipped silently; only an unexpected read failure is reported.
 */
export class DeviceSensors {
  constructor(
    private readonly sysRoot: string = '/sys',
    private readonly onUnexpected: (file: string, error: unknown) => void = () => {},
  ) {}

  async read(): Promise<SensorReading[]> {
    const [hwmon, iio] = await Promise.all([this.readHwmon(), this.readIio()]);
    return [...hwmon, ...iio];
  }

  private async readHwmon(): Promise<SensorReading[]> {
    const root = path.join(this.sysRoot, 'class', 'hwmon');
    const readings: SensorReading[] = [];
    for (const entry of await this.list(root)) {
      const dir = path.join(root, entry);
      const files = await this.list(dir);
      const device = (await this.text(path.join(dir, 'name'))) ?? entry;
      for (const channel of HWMON_CHANNELS) {
        for (const file of files) {
          const match = new RegExp(`^(${channel.prefix}\\d+)_input$`).exec(file);
          if (!match) continue;
          const raw = await this.number(path.join(dir, file));
          if (raw === undefined) continue;
          const label = await this.text(path.join(dir, `${match[1]}_label`));
          readings.push(scalar('hwmon', device, label ?? match[1]!, channel.kind, raw * channel.scale));
        }
      }
    }
    return readings;
  }

  private async readIio(): Promise<SensorReading[]> {
    const root = path.join(this.sysRoot, 'bus', 'iio', 'devices');
    const readings: SensorReading[] = [];
    for (const entry of await this.list(root)) {
      if (!entry.startsWith('iio:device')) continue;
      const dir = path.join(root, entry);
      const device = (await this.text(path.join(dir, 'name'))) ?? entry;
      for (const channel of IIO_SCALARS) {
        const value = await this.iioValue(dir, `in_${channel.channel}`, `in_${channel.channel}`);
        if (value !== undefined) readings.push(scalar('iio', device, channel.channel, channel.kind, value * channel.unitScale));
      }
      for (const channel of IIO_VECTORS) {
        const [x, y, z] = await Promise.all(['x', 'y', 'z'].map((axis) => this.iioValue(dir, `in_${channel.channel}_${axis}`, `in_${channel.channel}`)));
        if (x === undefined || y === undefined || z === undefined) continue;
        readings.push({
          source: 'iio',
          device,
          channel: channel.channel,
          kind: channel.kind,
          unit: UNITS[channel.kind],
          value: null,
          axes: { x: round(x), y: round(y), z: round(z) },
        });
      }
    }
    return readings;
  }

  /** IIO: a processed `_input`, else (`_raw` + offset) × scale, the scale per channel or shared by the axes. */
  private async iioValue(dir: string, name: string, shared: string): Promise<number | undefined> {
    const input = await this.number(path.join(dir, `${name}_input`));
    if (input !== undefined) return input;
    const raw = await this.number(path.join(dir, `${name}_raw`));
    if (raw === undefined) return undefined;
    const offset = (await this.number(path.join(dir, `${name}_offset`))) ?? (await this.number(path.join(dir, `${shared}_offset`))) ?? 0;
    const scale = (await this.number(path.join(dir, `${name}_scale`))) ?? (await this.number(path.join(dir, `${shared}_scale`))) ?? 1;
    return (raw + offset) * scale;
  }

  private async list(dir: string): Promise<string[]> {
    try {
      return (await fs.readdir(dir)).sort();
    } catch (error) {
      if (!isAbsent(error)) this.onUnexpected(dir, error);
      return [];
    }
  }

  private async text(file: string): Promise<string | undefined> {
    try {
      return (await fs.readFile(file, 'utf8')).trim();
    } catch (error) {
      if (!isAbsent(error)) this.onUnexpected(file, error);
      return undefined;
    }
  }

  private async number(file: string): Promise<number | undefined> {
    const text = await this.text(file);
    if (text === undefined || text === '') return undefined;
    const value = Number(text);
    return Number.isFinite(value) ? value : undefined;
  }
}

/** Absent sensors, or a driver that refuses a read while idle (EAGAIN, ENODATA): not errors. */
function isAbsent(error: unknown): boolean {
  const code = systemErrorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENODATA' || code === 'EAGAIN' || code === 'EINVAL';
}

function scalar(source: SensorReading['source'], device: string, channel: string, kind: SensorKind, value: number): SensorReading {
  return { source, device, channel, kind, unit: UNITS[kind], value: round(value), axes: null };
}

const round = (value: number): number => Math.round(value * 1000) / 1000;
