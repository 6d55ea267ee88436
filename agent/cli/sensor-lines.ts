import type { SensorReading } from '../telemetry/device-sensors.js';

/** The box's sensors from the latest telemetry sample, one line each after a blank one (nothing when it has none). */
export function sensorLines(sensors: readonly SensorReading[] | undefined): string[] {
  if (!sensors || sensors.length === 0) return [];
  const lines = ['', 'sensors (latest sample):'];
  for (const sensor of sensors) {
    const reading =
      sensor.axes !== null
        ? `x ${sensor.axes.x} y ${sensor.axes.y} z ${sensor.axes.z} ${sensor.unit}`
        : `${sensor.value === null ? '-' : sensor.value} ${sensor.unit}`;
    lines.push(`  ${sensor.source} ${sensor.device} ${sensor.channel} (${sensor.kind}): ${reading}`);
  }
  return lines;
}
