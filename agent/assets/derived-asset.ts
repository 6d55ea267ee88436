import { execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { AgentError, errorMessage, systemErrorCode } from '../errors.js';
import type { AssetEntry, Catalog } from './catalog.js';
import { sha256File } from './verified-write.js';

const execFileAsync = promisify(execFile);

/**
 * A derived asset (a transcoded clip, a frame taken from a clip) is made on this machine from
 * a catalogued source by a recipe in the catalog. Another ffmpeg or x264 build gives other
 * bytes, so it cannot be held to one output hash: it is verified through its source's sha256
 * and the recipe, recorded in a provenance file beside it, with the output's own sha256 so a
 * later change of the file is still caught. The catalog's sha256 (the reference build's bytes)
 * stays valid too: a mirror copy is checked against it.
 */
export interface DerivedProvenance {
  madeBy: 'cctv-agent assets fetch';
  asset: string;
  source: { name: string; sha256: string };
  tool: { name: 'ffmpeg'; path: string; version: string };
  args: string[];
  output: { sha256: string; bytes: number };
}

export function derivedProvenanceFile(file: string): string {
  return `${file}.provenance.json`;
}

function sourceOf(asset: AssetEntry, catalog: Catalog): AssetEntry {
  const source = catalog.assets.find((entry) => entry.name === asset.derivedFrom?.asset);
  if (!source) throw new AgentError('INTERNAL', `catalog: ${asset.name} is derived from unknown asset ${asset.derivedFrom?.asset}`);
  return source;
}

/**
 * 'ok' when `file` was derived by this recipe from the catalogued source and has not changed
 * since; 'missing' when there is no provenance; an error when there is one that does not fit.
 */
export async function checkDerivedAsset(asset: AssetEntry, file: string, catalog: Catalog): Promise<'ok' | 'missing' | AgentError> {
  if (!asset.derivedFrom) return 'missing';
  let provenance: DerivedProvenance;
  try {
    provenance = JSON.parse(await fsp.readFile(derivedProvenanceFile(file), 'utf8')) as DerivedProvenance;
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return 'missing';
    return new AgentError('ASSET_HASH_MISMATCH', `${derivedProvenanceFile(file)} cannot be read: ${errorMessage(error)}`, { cause: error });
  }
  const source = sourceOf(asset, catalog);
  if (provenance.source?.sha256 !== source.sha256 || JSON.stringify(provenance.args) !== JSON.stringify(asset.derivedFrom.ffmpegArgs)) {
    return new AgentError('ASSET_HASH_MISMATCH', `${file} was derived from another source or by another recipe than the catalog's; it is made again`);
  }
  let actual: string;
  try {
    actual = await sha256File(file);
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return 'missing';
    throw error;
  }
  if (actual !== provenance.output.sha256) {
    return new AgentError(
      'ASSET_HASH_MISMATCH',
      `${file}: sha256 ${actual}, but its provenance recorded ${provenance.output.sha256} when it was derived: the file changed since`,
    );
  }
  return 'ok';
}

/**
 * Makes `asset` in destDir from its source (already present and verified at sourceFile) with
 * the catalog's ffmpeg recipe, through a temporary name, and writes its provenance.
 */
export async function deriveAsset(
  asset: AssetEntry,
  sourceFile: string,
  destDir: string,
  catalog: Catalog,
  ffmpegPath: string,
  signal?: AbortSignal,
): Promise<DerivedProvenance> {
  const recipe = asset.derivedFrom;
  if (!recipe) throw new AgentError('INTERNAL', `${asset.name} has no recipe`);
  const finalFile = path.join(destDir, asset.name);
  // ffmpeg picks the muxer from the extension, so the temporary name keeps it.
  const partFile = path.join(destDir, `.${path.parse(asset.name).name}.part${path.extname(asset.name)}`);
  const args = recipe.ffmpegArgs.map((arg) => (arg === '{input}' ? sourceFile : arg === '{output}' ? partFile : arg));
  try {
    await execFileAsync(ffmpegPath, ['-nostdin', '-hide_banner', '-loglevel', 'error', '-y', ...args], {
      timeout: 300_000,
      maxBuffer: 4 * 1024 * 1024,
      ...(signal ? { signal } : {}),
    });
    const { stdout } = await execFileAsync(ffmpegPath, ['-hide_banner', '-version'], { timeout: 10_000 });
    const provenance: DerivedProvenance = {
      madeBy: 'cctv-agent assets fetch',
      asset: asset.name,
      source: { name: recipe.asset, sha256: sourceOf(asset, catalog).sha256 },
      tool: { name: 'ffmpeg', path: ffmpegPath, version: /ffmpeg version (\S+)/.exec(stdout)?.[1] ?? 'unknown' },
      args: recipe.ffmpegArgs,
      output: { sha256: await sha256File(partFile), bytes: fs.statSync(partFile).size },
    };
    await fsp.writeFile(`${derivedProvenanceFile(finalFile)}.part`, `${JSON.stringify(provenance, null, 2)}\n`);
    await fsp.rename(`${derivedProvenanceFile(finalFile)}.part`, derivedProvenanceFile(finalFile));
    await fsp.rename(partFile, finalFile);
    return provenance;
  } catch (error) {
    await fsp.rm(partFile, { force: true });
    throw new AgentError('ASSET_DERIVE_FAILED', `${asset.name}: deriving it from ${recipe.asset} with ${ffmpegPath} failed: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}
