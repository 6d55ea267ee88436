/**
 * Locating the real models, footage and images used by tests. They are never
 * committed; they come from (in order):
 *   1. <project>/models/assets/<name>       (fetched by the agent's asset tooling)
 *   2. $CCTV_ASSET_MIRROR/<mirrorPath from models/catalog.json>, else
 *      $CCTV_ASSET_MIRROR/<kind>/<name>, else $CCTV_ASSET_MIRROR/<name>
 *   3. <project>/../shared/assets/<kind>/<name>  (kind: models, video, images)
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (this file is <project>/test/support/assets.ts). */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const KINDS = ['models', 'video', 'images'] as const;
type Kind = (typeof KINDS)[number];

function kindOf(base: string): Kind | undefined {
  const ext = path.extname(base).toLowerCase();
  if (ext === '.onnx' || ext === '.txt' || ext === '.json') return 'models';
  if (ext === '.mp4' || ext === '.avi' || ext === '.mkv' || ext === '.h264') return 'video';
  if (ext === '.jpg' || ext === '.jpeg' || ext === '.png') return 'images';
  return undefined;
}

/** mirrorPath of a catalogued asset ("video/x.mp4"), read from models/catalog.json when present. */
function catalogMirrorPath(base: string): string | undefined {
  try {
    const catalog = JSON.parse(readFileSync(path.join(projectRoot, 'models', 'catalog.json'), 'utf8')) as {
      assets?: Array<{ name?: unknown; mirrorPath?: unknown }>;
    };
    const entry = catalog.assets?.find((a) => a.name === base);
    return typeof entry?.mirrorPath === 'string' ? entry.mirrorPath : undefined;
  } catch {
    return undefined;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** Every path assetPath() would try for name, in order. */
export function assetCandidates(name: string): string[] {
  if (name === '' || path.isAbsolute(name) || name.split(/[\\/]/).includes('..')) {
    throw new Error(`assetPath: expected a relative asset name like "yolox-nano.onnx" or "video/x.mp4", got "${name}"`);
  }
  // name may carry its kind: "video/highway-cctv-320x240.mp4".
  const parts = name.split(/[\\/]/);
  const base = parts[parts.length - 1] ?? name;
  const given = parts.length > 1 ? parts[0] : undefined;
  const kinds: string[] = [];
  if (given) kinds.push(given);
  const guessed = kindOf(base);
  if (guessed && !kinds.includes(guessed)) kinds.push(guessed);
  for (const k of KINDS) if (!kinds.includes(k)) kinds.push(k);

  const out: string[] = [path.join(projectRoot, 'models', 'assets', base)];
  if (given) out.push(path.join(projectRoot, 'models', 'assets', name));
  const mirror = process.env.CCTV_ASSET_MIRROR;
  if (mirror) {
    const catalogued = catalogMirrorPath(base);
    if (catalogued) out.push(path.join(mirror, catalogued));
    for (const k of kinds) out.push(path.join(mirror, k, base));
    out.push(path.join(mirror, base));
  }
  const shared = path.resolve(projectRoot, '..', 'shared', 'assets');
  for (const k of kinds) out.push(path.join(shared, k, base));
  return [...new Set(out)];
}

/**
 * Absolute path of a test asset, e.g. assetPath('yolox-nano-int8.onnx'),
 * assetPath('highway-cctv-320x240.mp4'), assetPath('images/bus-and-cars.jpg').
 * Throws, listing every place looked at, when it is nowhere.
 */
export function assetPath(name: string): string {
  const candidates = assetCandidates(name);
  for (const candidate of candidates) if (isFile(candidate)) return candidate;
  throw new Error(
    `Test asset "${name}" not found. Looked at:\n${candidates.map((c) => `  ${c}`).join('\n')}\n` +
      'Fetch the assets into models/assets/, or set CCTV_ASSET_MIRROR to a directory holding them ' +
      '(flat or in models/, video/, images/ subdirectories).',
  );
}

/** True when assetPath(name) would succeed (for it.skipIf / describe.runIf). */
export function hasAsset(name: string): boolean {
  return assetCandidates(name).some((c) => existsSync(c) && isFile(c));
}

/**
 * The asset mirror the tests verify against, found as the CLI finds it: $CCTV_ASSET_MIRROR,
 * else ../shared/assets beside the project. Without one, the tests that need it are skipped,
 * and this says so once per file (not silently).
 */
export function testMirror(file: string): string | undefined {
  const fromEnv = process.env.CCTV_ASSET_MIRROR?.trim();
  const beside = path.resolve(projectRoot, '..', 'shared', 'assets');
  const mirror = fromEnv ? path.resolve(fromEnv) : existsSync(beside) ? beside : undefined;
  if (mirror === undefined) {
    console.warn(`${path.basename(file)}: SKIPPING the mirror tests: no asset mirror (set CCTV_ASSET_MIRROR, or put the assets in ${beside})`);
  }
  return mirror;
}

/** The name a describe block gets when its mirror is missing, so the skip reads as one in the report. */
export function mirrorSuiteName(name: string, mirror: string | undefined): string {
  return mirror === undefined ? `${name} (SKIPPED: no asset mirror)` : name;
}
