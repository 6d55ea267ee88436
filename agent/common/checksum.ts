import { createHash } from 'node:crypto';
import fs from 'node:fs';

/** sha256 (lowercase hex) of a file, read as a stream so large files never sit whole in memory. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** sha256 (lowercase hex) of bytes in memory. */
export function sha256Of(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}
