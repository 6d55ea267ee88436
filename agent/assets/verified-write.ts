import { createHash } from 'node:crypto';
import fsp from 'node:fs/promises';
import { AgentError, errorMessage } from '../errors.js';
export { sha256File } from '../common/checksum.js';

export interface VerifiedWriteTarget {
  /** Shown in error messages, e.g. "coco-labels.txt from mirror /srv/assets/models/coco-labels.txt". */
  label: string;
  /** `<dest>/<name>.part`: the bytes go here first, so a crash never leaves a half file under the real name. */
  partFile: string;
  finalFile: string;
  sha256: string;
  size: number;
  /** Called after every chunk with the bytes written so far. */
  onBytes?: (bytes: number) => void;
}

/**
 * Streams `source` into `partFile` while hashing it, then renames it to `finalFile` only when
 * the sha256 matches. On any failure the part file is removed, so no unverified bytes stay
 * behind under either name. Returns the number of bytes written.
 */
export async function writeVerified(source: AsyncIterable<Uint8Array>, target: VerifiedWriteTarget): Promise<number> {
  const hash = createHash('sha256');
  let bytes = 0;
  let renamed = false;
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await openForWrite(target.partFile);
    for await (const chunk of source) {
      bytes += chunk.byteLength;
      // A larger body cannot match the catalog; stop before filling the disk with it.
      if (bytes > target.size) {
        throw new AgentError('ASSET_HASH_MISMATCH', `${target.label}: more than the catalog's ${target.size} bytes arrived, so it is not the catalogued file`);
      }
      hash.update(chunk);
      await writeChunk(handle, chunk, target.partFile);
      target.onBytes?.(bytes);
    }
    // fsync before the rename: on an edge box losing power, the name must not point at unwritten blocks.
    await handle.sync();
    await handle.close();
    handle = undefined;
    const actual = hash.digest('hex');
    if (actual !== target.sha256) {
      throw new AgentError('ASSET_HASH_MISMATCH', `${target.label}: sha256 ${actual} (${bytes} bytes), expected ${target.sha256} (${target.size} bytes)`);
    }
    await renameIntoPlace(target.partFile, target.finalFile);
    renamed = true;
    return bytes;
  } finally {
    if (handle !== undefined) await handle.close().catch(() => undefined /* already failing; the first error is the one to report */);
    if (!renamed) await fsp.rm(target.partFile, { force: true });
  }
}

async function openForWrite(file: string): Promise<fsp.FileHandle> {
  try {
    return await fsp.open(file, 'w');
  } catch (error) {
    throw new AgentError('STORAGE_WRITE_FAILED', `cannot create ${file}: ${errorMessage(error)}`, { cause: error });
  }
}

async function writeChunk(handle: fsp.FileHandle, chunk: Uint8Array, file: string): Promise<void> {
  try {
    await handle.write(chunk);
  } catch (error) {
    throw new AgentError('STORAGE_WRITE_FAILED', `cannot write ${file}: ${errorMessage(error)}`, { cause: error });
  }
}

async function renameIntoPlace(from: string, to: string): Promise<void> {
  try {
    await fsp.rename(from, to);
  } catch (error) {
    throw new AgentError('STORAGE_WRITE_FAILED', `cannot rename ${from} to ${to}: ${errorMessage(error)}`, { cause: error });
  }
}
