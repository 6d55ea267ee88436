import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import type { CameraState } from '../ingest/camera-supervisor.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { STATUS_FILE_NAME, type StatusSnapshot } from '../telemetry/status-file.js';
import { isProcessAlive, livenessOf, STATUS_STALE_AFTER_MS } from './agent-liveness.js';
import { describeRunConfig } from '../inference/thread-choice.js';
import type { CliIo } from './io.js';
import { errorLines } from '../errors.js';
import { tableLines } from './table.js';

/** `status` exits 0 when the agent runs, 3 when it does not (as `systemctl status` does). */
const NOT_RUNNING = 3;
function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

/** The depth as known: a stopped agent's is the one it had when it stopped (older agents wrote -1). */
function outboxDepthText(depth: unknown, state: StatusSnapshot['state']): string {
  if (typeof depth !== 'number' || depth < 0) return 'unknown';
  return state === 'stopped' ? `${depth} (when it stopped)` : String(depth);
}

export function formatStatus(snapshot: StatusSnapshot, running: boolean, now = Date.now()): string {
  const age = now - Date.parse(snapshot.writtenAt);
  const state =
    snapshot.state === 'stopped'
      ? 'stopped'
      : running
        ? age > STATUS_STALE_AFTER_MS
          ? `hung? (status not updated for ${duration(age)})`
          : 'running'
        : 'not running (killed?)';
  const lines = [`cctv-agent ${snapshot.deviceId}: ${state} (pid ${snapshot.pid}, started ${snapshot.startedAt}, status ${duration(age)} old)`];
  const inference = snapshot.services['inference']?.detail ?? {};
  lines.push(
    `model: ${snapshot.model ? `${snapshot.model.id}@${snapshot.model.version}` : 'none'} (swaps ${String(inference['swaps'] ?? 0)}, failures ${String(inference['failures'] ?? 0)})`,
  );
  const choice = inference['modelChoice'] as { reason: string; excluded: Array<{ model: string; reason: string }> } | undefined;
  if (choice) lines.push(`model chosen by "auto": ${choice.reason}`);
  if (inference['threads'] !== undefined) lines.push(`inference threads: ${threadsText(inference)}`);
  const cameras = (snapshot.services['ingest']?.detail?.['cameras'] ?? []) as CameraState[];
  lines.push('cameras:');
  lines.push(
    tableLines([
      ['id', 'state', 'for', 'frames', 'dropped', 'fps', 'decode', 'reconnects', 'last error'],
      ...cameras.map((camera) => [
        camera.id,
        camera.state,
        duration(now - camera.since),
        String(camera.framesIn),
        String(camera.dropped),
        String(camera.decodeFps),
        // The decoder skipping in use (docs/ingest.md); the code when the setting fell back.
        camera.decode ? `${camera.decode.mode}${camera.decode.code ? ` (${camera.decode.code})` : ''}` : '-',
        String(camera.reconnects),
        camera.lastError ? `${camera.lastError}${camera.lastErrorAt ? ` (${duration(now - camera.lastErrorAt)} ago)` : ''}` : '-',
      ]),
    ]).join('\n'),
  );
  const mqtt = snapshot.services['mqtt'];
  const outbox = snapshot.services['outbox-drain']?.detail ?? {};
  lines.push(
    mqtt
      ? `mqtt: ${mqtt.state}${mqtt.detail?.['lastError'] ? ` (${String(mqtt.detail['lastError'])})` : ''}; outbox depth ${outboxDepthText(outbox['depth'], snapshot.state)}, published ${String(outbox['published'] ?? 0)}`
      : 'mqtt: off',
  );
  const storage = snapshot.services['storage']?.detail ?? {};
  const results = snapshot.services['results']?.detail ?? {};
  lines.push(
    `storage: ${snapshot.services['storage']?.state ?? '?'}, ${(Number(storage['sizeBytes'] ?? 0) / 1048576).toFixed(1)} MB; results written ${String(results['written'] ?? 0)}, pending ${String(results['pending'] ?? 0)}`,
  );
  const monitor = snapshot.services['monitor'];
  if (monitor) {
    const detail = monitor.detail ?? {};
    const figures = (detail['figures'] ?? []) as Array<{
      cameraId: string;
      model: string;
      labels: number;
      precision: { value: number; low: number; high: number } | null;
    }>;
    const shown = figures
      .filter((entry) => entry.labels > 0)
      .map(
        (entry) =>
          `${entry.cameraId} ${entry.model} precision ${entry.precision ? `${(entry.precision.value * 100).toFixed(1)} % [${(entry.precision.low * 100).toFixed(1)}-${(entry.precision.high * 100).toFixed(1)}]` : '-'} over ${entry.labels} labels`,
      );
    lines.push(
      `monitor: ${monitor.state}; alerts ${String(detail['alerts'] ?? 0)}, retrain pending ${String(detail['retrainPending'] ?? 0)}${shown.length > 0 ? `; ${shown.join('; ')}` : '; no feedback yet'}`,
    );
  }
  // counting (issue #18)
  const counting = snapshot.services['counting'];
  if (counting) {
    const detail = counting.detail ?? {};
    const cameras = (detail['cameras'] ?? []) as Array<{ cameraId: string; lines: number; tracks: number; crossings: number }>;
    const shown = cameras.map((camera) => `${camera.cameraId} ${camera.crossings} counted on ${camera.lines} lines, ${camera.tracks} tracks now`);
    lines.push(
      `counting: ${counting.state}; intervals written ${String(detail['intervalsWritten'] ?? 0)}${shown.length > 0 ? `; ${shown.join('; ')}` : ''} (cctv-agent counts)`,
    );
  }
  const unhealthy = Object.entries(snapshot.services)
    .filter(([, health]) => !health.ok)
    .map(([name, health]) => `${name} (${health.state})`);
  if (unhealthy.length > 0) lines.push(`not ok: ${unhealthy.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/** `cctv-agent status [--config FILE | --data-dir DIR] [--json]`: from local files, no broker needed. */
export async function statusCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string' }, json: { type: 'boolean' } } });
  let dataDir = values['data-dir'];
  if (dataDir === undefined) {
    try {
      dataDir = loadConfig({ ...(values.config ? { file: values.config } : {}), env: io.env }).config.dataDir;
    } catch (error) {
      for (const line of errorLines(error)) io.err.write(`${line}\n`);
      io.err.write('cctv-agent: give --data-dir DIR to read a status without a config\n');
      return ExitCode.CONFIG;
    }
  }
  const file = path.resolve(dataDir, STATUS_FILE_NAME);
  let snapshot: StatusSnapshot;
  try {
    snapshot = JSON.parse(fs.readFileSync(file, 'utf8')) as StatusSnapshot;
  } catch (error) {
    io.err.write(
      `cctv-agent: no agent status in ${file} (${(error as NodeJS.ErrnoException).code ?? 'unreadable'}): the agent has not run with this data directory\n`,
    );
    return NOT_RUNNING;
  }
  const running = livenessOf(snapshot, Date.now()) === 'running';
  io.out.write(
    values.json
      ? `${JSON.stringify({ running, ...snapshot }, null, 2)}\n`
      : formatStatus(snapshot, snapshot.state === 'running' && isProcessAlive(snapshot.pid)),
  );
  return running ? ExitCode.OK : NOT_RUNNING;
}

/**
 * "1 × 2 sessions (measured, ms per frame: 1 thread 31.2, 2 threads 33.0, 2 sessions of 1 thread 17.1)"
 * or "2 (inference.intraOpThreads)".
 */
function threadsText(inference: Record<string, unknown>): string {
  const timings = (inference['threadTimings'] ?? []) as RunTiming[];
  const sessions = Number(inference['sessions'] ?? 1);
  const chosen = `${String(inference['threads'])}${sessions > 1 ? ` × ${sessions} sessions` : ''}`;
  if (inference['threadsBy'] !== 'measurement' || timings.length === 0) return `${chosen} (inference.intraOpThreads, inference.sessions)`;
  return `${chosen} (measured, ms per frame: ${timings.map((timing) => `${describeRunConfig({ threads: timing.threads, sessions: timing.sessions ?? 1 })} ${timing.msPerRun}`).join(', ')})`;
}

type RunTiming = { threads: number; sessions?: number; msPerRun: number };
