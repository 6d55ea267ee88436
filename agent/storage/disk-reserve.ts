import fsSync from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { systemErrorCode } from '../errors.js';
import type { Logger } from '../log/logger.js';

export const RESERVE_FILE_NAME = '.disk-reserve';
const DEFAULT_RESERVE_BYTES = 16 * 1024 * 1024;

/**
 * A placeholder file in the data directory, given back when the disk is full: SQLite needs
 * free space to delete (the WAL grows before pages are freed), so without it a full disk
 * could not be cured from inside. Re-created once there is room again.
 */
export class DiskReserve {
  readonly file: string;
  private held = false;
  private size = 0;

  constructor(
    private readonly dataDir: string,
    private readonly log: Logger,
  ) {
    this.file = path.join(dataDir, RESERVE_FILE_NAME);
  }

  /** 0 until the first ensure() sized it from the file system. */
  get sizeBytes(): number {
    return this.size;
  }

  /** Size for a file system of `totalBytes`: 16 MiB, or a twentieth of a small disk. */
  static sizeFor(totalBytes: number): number {
    return Math.max(64 * 1024, Math.min(DEFAULT_RESERVE_BYTES, Math.floor(totalBytes / 20)));
  }

  async ensure(): Promise<void> {
    if (this.held) return;
    if (this.size === 0) {
      const stats = await fs.statfs(this.dataDir);
      this.size = DiskReserve.sizeFor(stats.blocks * stats.bsize);
    }
    try {
      const stat = await fs.stat(this.file).catch((error: unknown) => {
        if (systemErrorCode(error) === 'ENOENT') return undefined;
        throw error;
      });
      if (stat?.size !== this.size) {
        // Real blocks (not a sparse file), or the space would not be held at all.
        const handle = await fs.open(this.file, 'w');
        try {
          const chunk = Buffer.alloc(1024 * 1024, 0);
          for (let written = 0; written < this.size; written += chunk.length) {
            await handle.write(chunk, 0, Math.min(chunk.length, this.size - written));
          }
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      this.held = true;
    } catch (error) {
      const code = systemErrorCode(error);
      if (code !== 'ENOSPC' && code !== 'EDQUOT') throw error;
      // Not enough room for it now: removed again, retried when space comes back.
      await fs.rm(this.file, { force: true });
      this.log.warn({ code, bytes: this.size }, 'disk reserve not created: the disk is too full');
    }
  }

  /** Synchronous on purpose: the space must be there for the very next statement. */
  releaseNow(): boolean {
    const had = this.held;
    this.held = false;
    fsSync.rmSync(this.file, { force: true });
    if (had) this.log.warn({ bytes: this.size }, 'disk reserve released to let pruning run');
    return had;
  }
}
