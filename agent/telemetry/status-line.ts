import type { Health, Service } from '../lifecycle/service.js';
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

export interface StatusLineDeps {
  out: NodeJS.WritableStream;
  intervalMs: number;
  window: () => StatsWindow;
  inputs: () => Omit<StatusInputs, 'window'>;
}

/**
 * The status line on a terminal, every status.intervalSeconds: only built when the agent's
 * stderr is a TTY (journald gets the JSON log lines only).
 */
export class StatusLineService implements Service {
  readonly name = 'status-line';
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: StatusLineDeps) {}

  async start(): Promise<void> {
    this.deps.window(); // the first line covers the time since start, not since the counts began
    this.timer = setInterval(() => {
      this.deps.out.write(`${formatStatusLine({ window: this.deps.window(), ...this.deps.inputs() })}\n`);
    }, this.deps.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  health(): Health {
    return { ok: true, state: this.timer ? 'printing' : 'stopped' };
  }
}
