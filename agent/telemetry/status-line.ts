import type { StatsWindow } from './pipeline-stats.js';

export interface StatusInputs {
  window: StatsWindow;
  cameras: Array<{ id: string; state: string }>;
  mqtt: string;
  outboxDepth: number;
}

/** One line for a person at a terminal: throughput, model time, what was seen, link state. */
export function formatStatusLine({ window, cameras, mqtt, outboxDepth }: StatusInputs, at: Date = new Date()): string {
  const time = at.toISOString().slice(11, 19);
  const cameraText = cameras.map((camera) => (camera.state === 'streaming' ? camera.id : `${camera.id}:${camera.state}`)).join(',');
  const vehicles = Object.entries(window.vehicles)
    .sort((a, b) => b[1] - a[1])
    .map(([type, count]) => `${type} ${count}`)
    .join(', ');
  return `${time} ${cameraText} | ${window.fps.toFixed(1)} fps | infer ${window.inferenceP50.toFixed(1)} ms p50, ${window.inferenceP95.toFixed(1)} p95 | detections: ${vehicles || 'none'} | mqtt ${mqtt}, outbox ${outboxDepth}`;
}
