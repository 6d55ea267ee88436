import { systemErrorCode } from '../errors.js';
import type { StatusSnapshot } from '../telemetry/status-file.js';

/** The agent rewrites status.json every 2 s: older than this, it is hung or was killed. */
export const STATUS_STALE_AFTER_MS = 10_000;

export type Liveness = 'running' | 'stopped' | 'killed' | 'hung';

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user (the service user): alive.
    return systemErrorCode(error) === 'EPERM';
  }
}

/** What a status.json snapshot says about the agent now (shared by `status` and `telemetry`). */
export function livenessOf(snapshot: StatusSnapshot, now: number): Liveness {
  if (snapshot.state === 'stopped') return 'stopped';
  if (!isProcessAlive(snapshot.pid)) return 'killed';
  return now - Date.parse(snapshot.writtenAt) > STATUS_STALE_AFTER_MS ? 'hung' : 'running';
}
