import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';

/** A fresh directory per test, removed afterwards. */
export function useTempDir(prefix = 'cctv-test-'): () => string {
  let current: string | undefined;
  afterEach(() => {
    if (current) fs.rmSync(current, { recursive: true, force: true });
    current = undefined;
  });
  return () => {
    current ??= fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    return current;
  };
}
