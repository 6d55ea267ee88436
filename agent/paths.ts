import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding the agent's package.json, from source (agent/) or compiled (dist/agent/). */
export function packageRoot(from: string = fileURLToPath(import.meta.url)): string {
  let directory = path.dirname(from);
  for (;;) {
    if (fs.existsSync(path.join(directory, 'package.json'))) return directory;
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error(`no package.json above ${from}`);
    directory = parent;
  }
}

/** Fetched assets (models, labels, clips): git-ignored, filled by `cctv-agent assets fetch`. */
export function defaultAssetsDir(): string {
  return path.join(packageRoot(), 'models', 'assets');
}

export function manifestsDir(): string {
  return path.join(packageRoot(), 'models', 'manifests');
}
