import fs from 'node:fs';
import path from 'node:path';
import { loadCatalog } from '../../agent/assets/catalog.js';
import { defaultMirror } from '../../agent/assets/fetch.js';
import { defaultAssetsDir } from '../../agent/paths.js';

/**
 * A catalogued asset for a test: the fetched copy in models/assets, else the mirror's.
 * Tests never fetch; `npm test` runs the fetch first.
 */
export function assetPath(name: string): string {
  const local = path.join(defaultAssetsDir(), name);
  if (fs.existsSync(local)) return local;
  const entry = loadCatalog().assets.find((asset) => asset.name === name);
  const mirror = defaultMirror(process.env);
  if (entry && mirror) {
    const mirrored = path.join(mirror, entry.mirrorPath);
    if (fs.existsSync(mirrored)) return mirrored;
  }
  throw new Error(`test asset ${name} is missing: run \`npm run assets\` (or set CCTV_ASSET_MIRROR)`);
}
