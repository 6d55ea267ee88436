import fs from 'node:fs/promises';
import os from 'node:os';
import si from 'systeminformation';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { DeviceSensors } from './device-sensors.js';
import type { TelemetrySample } from './telemetry-sample.js';

/** A hung sensor read (some boards block on i2c) must not hold the telemetry tick. */
const CALL_TIMEOUT_MS = 5000;

async function within<T>(promise: Promise<T>, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), CALL_TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The machine's figures, through systeminformation (asynchronous: it reads /proc and /sys or
 * runs tools, which can be slow, so it runs on the telemetry timer, never on the frame path).
 * A figure the hardware does not give is null, and a failing call is logged once.
 */
export class SystemSampler {
  private readonly startedAt = Date.now();
  private readonly failed = new Set<string>();

  private readonly sensors: DeviceSensors;

  constructor(
    private readonly dataDir: string,
    private readonly log: Logger,
    sysfsRoot = '/sys',
  ) {
    this.sensors = new DeviceSensors(sysfsRoot, (file, error) => {
      if (this.failed.has(file)) return;
      this.failed.add(file);
      this.log.warn({ file, err: errorMessage(error) }, 'a device sensor cannot be read');
    });
  }

  async sample(): Promise<TelemetrySample['system']> {
    const [load, temperature, memory, disk, sensors] = await Promise.all([
      this.call('currentLoad', within(si.currentLoad(), undefined)),
      this.call('cpuTemperature', within(si.cpuTemperature(), undefined)),
      this.call('mem', within(si.mem(), undefined)),
      this.call('statfs', within(fs.statfs(this.dataDir), undefined)),
      this.call('sensors', within(this.sensors.read(), undefined)),
    ]);
    const celsius = temperature?.main;
    return {
      cpuLoadPercent: load ? round(load.currentLoad) : null,
      cpuPerCorePercent: load ? load.cpus.map((cpu) => round(cpu.load)) : [],
      temperatureC: typeof celsius === 'number' && Number.isFinite(celsius) && celsius > -100 ? round(celsius) : null,
      memoryTotalBytes: memory?.total ?? os.totalmem(),
      memoryAvailableBytes: memory?.available ?? os.freemem(),
      diskFreeBytes: disk ? disk.bavail * disk.bsize : null,
      diskTotalBytes: disk ? disk.blocks * disk.bsize : null,
      uptimeSeconds: Math.round(os.uptime()),
      agentUptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      agentRssBytes: process.memoryUsage.rss(),
      sensors: sensors ?? [],
    };
  }

  private async call<T>(name: string, promise: Promise<T | undefined>): Promise<T | undefined> {
    try {
      return await promise;
    } catch (error) {
      if (!this.failed.has(name)) this.log.warn({ call: name, err: errorMessage(error) }, 'system figure unavailable');
      this.failed.add(name);
      return undefined;
    }
  }
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
