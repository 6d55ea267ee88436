import fs from 'node:fs/promises';
import path from 'node:path';
import { systemErrorCode } from '../errors.js';

const TMP = '.tmp';

/**
 * The JPEG files of the evidence samples, flat in one directory. A file is written under a
 * temporary name and renamed, so a crash never leaves a half JPEG under a sample's name; the
 * sweep at start removes what a crash left (temporary files, files whose row was never
 * written or was deleted before the file).
 */
export class SampleFiles {
  constructor(readonly dir: string) {}

  pathOf(file: string): string {
    return path.join(this.dir, file);
  }

  async ensure(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
  }

  async write(file: string, data: Uint8Array): Promise<void> {
    const target = this.pathOf(file);
    await fs.writeFile(target + TMP, data);
    await fs.rename(target + TMP, target);
  }

  /** Deletes a sample's file; one already gone is fine. */
  async remove(file: string): Promise<void> {
    await fs.rm(this.pathOf(file), { force: true });
  }

  /**
   * Removes temporary files and files no row names; returns the names of the files present,
   * so the caller can drop rows whose file is missing.
   */
  async sweep(known: ReadonlySet<string>): Promise<{ present: Set<string>; removed: number }> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch (error) {
      if (systemErrorCode(error) === 'ENOENT') return { present: new Set(), removed: 0 };
      throw error;
    }
    const present = new Set<string>();
    let removed = 0;
    for (const name of names) {
      // Only names this service writes: a directory shared by mistake loses nothing else.
      if (!name.endsWith('.jpg') && !name.endsWith(`.jpg${TMP}`)) continue;
      if (name.endsWith(TMP) || !known.has(name)) {
        await fs.rm(this.pathOf(name), { force: true });
        removed++;
      } else {
        present.add(name);
      }
    }
    return { present, removed };
  }

  read(file: string): Promise<Buffer> {
    return fs.readFile(this.pathOf(file));
  }
}
