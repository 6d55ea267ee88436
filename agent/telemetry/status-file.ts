import fs from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';

export const STATUS_FILE_NAME = 'status.json';

/** What `cctv-agent status` reads: no secrets (camera sources are already redacted). */
export interface StatusSnapshot {
  pid: number;
  deviceId: string;
  startedAt: string;
  writtenAt: string;
  state: 'running' | 'stopped';
  model: { id: string; version: string } | undefined;
  services: Record<string, Health>;
}

export interface StatusFileDeps {
  file: string;
  intervalMs: number;
  deviceId: string;
  services: () => Record<string, Health>;
  model: () => { id: string; version: string } | undefined;
  log: Logger;
}

/**
 * Writes the agent's state to <dataDir>/status.json every few seconds (write to a temporary
 * name, then rename: a reader never sees half a file), so `cctv-agent status` works with no
 * broker and no socket. Asynchronous, on a timer, never on the frame path.
 */
export class StatusFile implements Service {
  readonly name = 'status-file';
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = new Date().toISOString();
  private writing: Promise<void> = Promise.resolve();
  private lastError: string | undefined;

  constructor(private readonly deps: StatusFileDeps) {}

  async start(): Promise<void> {
    await fs.mkdir(path.dirname(this.deps.file), { recursive: true });
    await this.write('running');
    this.timer = setInterval(() => {
      this.writing = this.writing.then(() => this.write('running'));
    }, this.deps.intervalMs);
  }

  private async write(state: StatusSnapshot['state']): Promise<void> {
    const snapshot: StatusSnapshot = {
      pid: process.pid,
      deviceId: this.deps.deviceId,
      startedAt: this.startedAt,
      writtenAt: new Date().toISOString(),
      state,
      model: this.deps.model(),
      services: this.deps.services(),
    };
    const temporary = `${this.deps.file}.${process.pid}.tmp`;
    try {
      await fs.writeFile(temporary, `${JSON.stringify(snapshot, null, 2)}\n`);
      await fs.rename(temporary, this.deps.file);
      this.lastError = undefined;
    } catch (error) {
      if (this.lastError === undefined) this.deps.log.warn({ err: errorMessage(error), file: this.deps.file }, 'status file not written');
      this.lastError = errorMessage(error);
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.writing;
    await this.write('stopped');
  }

  health(): Health {
    return { ok: this.lastError === undefined, state: this.lastError ? `failing: ${this.lastError}` : 'writing' };
  }
}
