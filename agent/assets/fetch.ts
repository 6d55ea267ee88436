import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { AgentError, errorMessage, isAgentError, systemErrorCode, type ErrorCode } from '../errors.js';
import { packageRoot } from '../paths.js';
import { assetsDir, loadCatalog, type AssetEntry, type AssetKind, type Catalog } from './catalog.js';
import { checkDerivedAsset, deriveAsset } from './derived-asset.js';
import { sha256File, writeVerified } from './verified-write.js';

export const MIRROR_ENV = 'CCTV_ASSET_MIRROR';

export type AssetStatus = 'present' | 'mirrored' | 'downloaded' | 'derived' | 'unavailable' | 'failed';

export interface AssetReport {
  name: string;
  kind: AssetKind;
  required: boolean;
  status: AssetStatus;
  /** The local file when the asset is there afterwards (present, mirrored, downloaded). */
  path: string | undefined;
  error: { code: ErrorCode; message: string } | undefined;
  /** Problems that did not stop the asset from arriving, e.g. a corrupt mirror copy replaced by a download. */
  warnings: string[];
}

export interface FetchResult {
  /** False when a required asset is not there afterwards; optional ones never fail the run. */
  ok: boolean;
  reports: AssetReport[];
}

export type FetchProgress =
  | { type: 'start'; asset: AssetEntry; index: number; count: number }
  | { type: 'download'; asset: AssetEntry; bytes: number; total: number }
  | { type: 'done'; asset: AssetEntry; report: AssetReport };

export interface FetchOptions {
  /** Only these assets (file names from the catalog); default all. */
  names?: string[];
  /** Only these kinds; combines with `names`. */
  only?: AssetKind[];
  /** A directory laid out as <mirror>/<mirrorPath>; tried before upstream. See defaultMirror(). */
  mirror?: string;
  /** Where assets land, flat as <destDir>/<name>; default models/assets. */
  destDir?: string;
  /** Never download; use what is present or in the mirror. */
  offline?: boolean;
  catalog?: Catalog;
  onProgress?: (event: FetchProgress) => void;
  signal?: AbortSignal;
  /** Replaces global fetch (tests). */
  fetchImpl?: typeof fetch;
  /**
   * The ffmpeg that makes derived assets (a transcoded clip, a frame) from their sources when no
   * mirror has them; without it they are only taken from a mirror. The CLI passes the bundled
   * build, so every machine derives the same bytes.
   */
  ffmpegPath?: string;
}

/**
 * The mirror to use when none is given: $CCTV_ASSET_MIRROR, else ../shared/assets beside the
 * package root when it exists (the layout of the project's workspace and CI), else none.
 */
export function defaultMirror(env: NodeJS.ProcessEnv = process.env, root: string = packageRoot()): string | undefined {
  const fromEnv = env[MIRROR_ENV]?.trim();
  if (fromEnv) return path.resolve(fromEnv);
  const beside = path.resolve(root, '..', 'shared', 'assets');
  return isDirectory(beside) ? beside : undefined;
}

/** Picks the catalog entries for `names` and `only`; an unknown name is a usage error, not a silent skip. */
export function selectAssets(catalog: Catalog, names: string[] = [], only: AssetKind[] = []): AssetEntry[] {
  const unknown = names.filter((name) => !catalog.assets.some((asset) => asset.name === name));
  if (unknown.length > 0) {
    throw new AgentError('USAGE', `unknown asset ${unknown.join(', ')} (known: ${catalog.assets.map((asset) => asset.name).join(', ')})`);
  }
  return catalog.assets.filter((asset) => (names.length === 0 || names.includes(asset.name)) && (only.length === 0 || only.includes(asset.kind)));
}

/**
 * Makes each selected asset present and verified in destDir: keeps a file already there with
 * the right sha256, else copies it from the mirror, else downloads it from upstream. Every
 * byte is hashed before the file gets its real name. Reports per asset instead of stopping at
 * the first failure, so one run tells about everything that is missing.
 */
export async function fetchAssets(options: FetchOptions = {}): Promise<FetchResult> {
  const catalog = options.catalog ?? loadCatalog();
  const selected = selectAssets(catalog, options.names, options.only);
  const destDir = assetsDir(options.destDir);
  if (options.mirror !== undefined && !isDirectory(options.mirror)) {
    throw new AgentError('ASSET_UNAVAILABLE', `mirror ${options.mirror} is not a directory (check --mirror or ${MIRROR_ENV})`);
  }
  await makeDir(destDir);

  const reports: AssetReport[] = [];
  for (const [index, asset] of selected.entries()) {
    options.signal?.throwIfAborted();
    options.onProgress?.({ type: 'start', asset, index, count: selected.length });
    const report = await fetchOne(asset, destDir, options, catalog);
    reports.push(report);
    options.onProgress?.({ type: 'done', asset, report });
  }
  const ok = reports.every((report) => !report.required || report.path !== undefined);
  return { ok, reports };
}

async function fetchOne(asset: AssetEntry, destDir: string, options: FetchOptions, catalog: Catalog): Promise<AssetReport> {
  const finalFile = path.join(destDir, asset.name);
  const report = (status: AssetStatus, extra: Partial<AssetReport> = {}): AssetReport => ({
    name: asset.name,
    kind: asset.kind,
    required: asset.required,
    status,
    path: undefined,
    error: undefined,
    warnings: [],
    ...extra,
  });
  // Errors from each source tried, in order; a later success turns them into warnings.
  const failures: AgentError[] = [];

  const local = await checkLocalAsset(asset, finalFile);
  if (local === 'ok') return report('present', { path: finalFile });
  const derivedHere = local === 'missing' ? 'missing' : await checkDerivedAsset(asset, finalFile, catalog);
  if (derivedHere === 'ok') return report('present', { path: finalFile });
  if (derivedHere instanceof AgentError) failures.push(derivedHere);
  else if (local instanceof AgentError) failures.push(local);

  const target = { partFile: `${finalFile}.part`, finalFile, sha256: asset.sha256, size: asset.size };
  const mirrorFile = options.mirror === undefined ? undefined : path.join(options.mirror, asset.mirrorPath);
  if (mirrorFile !== undefined && isFile(mirrorFile)) {
    try {
      await writeVerified(fs.createReadStream(mirrorFile), { ...target, label: `${asset.name} from mirror ${mirrorFile}` });
      return report('mirrored', { path: finalFile, warnings: failures.map((failure) => failure.message) });
    } catch (error) {
      failures.push(asAgentError(error, 'ASSET_UNAVAILABLE', `${asset.name}: mirror copy ${mirrorFile} cannot be read`));
    }
  }

  if (asset.upstream !== null && options.offline !== true) {
    try {
      await download(asset, asset.upstream, target, options);
      return report('downloaded', { path: finalFile, warnings: failures.map((failure) => failure.message) });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      failures.push(asAgentError(error, 'ASSET_DOWNLOAD_FAILED', `${asset.name}: download from ${asset.upstream} failed`));
    }
  }

  const recipe = asset.derivedFrom;
  if (recipe !== undefined && options.ffmpegPath !== undefined) {
    // Made here from its source, which is fetched (and verified) first.
    const sourceEntry = catalog.assets.find((entry) => entry.name === recipe.asset)!;
    const source = await fetchOne(sourceEntry, destDir, options, catalog);
    if (source.path === undefined) {
      failures.push(
        new AgentError(
          source.error?.code ?? 'ASSET_UNAVAILABLE',
          `${asset.name}: its source ${recipe.asset} is not available: ${source.error?.message ?? source.status}`,
        ),
      );
    } else {
      try {
        await deriveAsset(asset, source.path, destDir, catalog, options.ffmpegPath, options.signal);
        return report('derived', { path: finalFile, warnings: failures.map((failure) => failure.message) });
      } catch (error) {
        if (options.signal?.aborted) throw error;
        failures.push(asAgentError(error, 'ASSET_DERIVE_FAILED', `${asset.name}: deriving failed`));
      }
    }
  }

  if (failures.length === 0) {
    return report('unavailable', { error: { code: 'ASSET_UNAVAILABLE', message: unavailableMessage(asset, mirrorFile) } });
  }
  // A hash mismatch is the most telling failure (a corrupt or tampered file), so it names the result.
  const headline = failures.find((failure) => failure.code === 'ASSET_HASH_MISMATCH') ?? failures[failures.length - 1]!;
  return report('failed', { error: { code: headline.code, message: failures.map((failure) => failure.message).join('; ') } });
}

/** 'ok' when `file` is the catalogued file; a mismatch (or read) error when it is another; 'missing' when absent. */
export async function checkLocalAsset(asset: AssetEntry, file: string): Promise<'ok' | 'missing' | AgentError> {
  let size: number;
  let actual: string;
  try {
    const stat = await fsp.stat(file);
    if (!stat.isFile()) return new AgentError('ASSET_HASH_MISMATCH', `${file} is not a regular file`);
    size = stat.size;
    // Size first: a wrong size needs no hashing to know the file is not the catalogued one.
    actual = size === asset.size ? await sha256File(file) : `(not computed: ${size} bytes)`;
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return 'missing';
    return new AgentError('ASSET_UNAVAILABLE', `${file} cannot be read: ${errorMessage(error)}`, { cause: error });
  }
  if (actual === asset.sha256) return 'ok';
  return new AgentError(
    'ASSET_HASH_MISMATCH',
    `existing ${file}: sha256 ${actual}, expected ${asset.sha256} (${asset.size} bytes); it is replaced when another source has the right file`,
  );
}

async function download(
  asset: AssetEntry,
  url: string,
  target: { partFile: string; finalFile: string; sha256: string; size: number },
  options: FetchOptions,
): Promise<void> {
  const fetchImpl = options.fetchImpl ?? fetch;
  let response: Response;
  try {
    response = await fetchImpl(url, { signal: options.signal ?? null, redirect: 'follow' });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    // undici says only "fetch failed"; the reason (DNS, refused, TLS) is in its cause.
    const reason = error instanceof Error && error.cause !== undefined ? `${error.message} (${errorMessage(error.cause)})` : errorMessage(error);
    throw new AgentError('ASSET_DOWNLOAD_FAILED', `${asset.name}: GET ${url} failed: ${reason}`, { cause: error });
  }
  if (!response.ok || response.body === null) {
    throw new AgentError('ASSET_DOWNLOAD_FAILED', `${asset.name}: GET ${url} answered HTTP ${response.status} ${response.statusText}`.trimEnd());
  }
  const announced = Number(response.headers.get('content-length'));
  const total = Number.isFinite(announced) && announced > 0 ? announced : asset.size;
  // Iterated as a web stream, so every network chunk gives a progress event; an early exit
  // from the loop (hash or size mismatch) cancels the stream and so the connection.
  const body = response.body as unknown as AsyncIterable<Uint8Array> & ReadableStream<Uint8Array>;
  options.onProgress?.({ type: 'download', asset, bytes: 0, total });
  try {
    await writeVerified(body, {
      ...target,
      label: `${asset.name} from ${url}`,
      onBytes: (bytes) => options.onProgress?.({ type: 'download', asset, bytes, total }),
    });
  } catch (error) {
    // Not yet read (the part file could not be created): release the connection.
    if (!body.locked) await body.cancel().catch(() => undefined /* the write error is the one to report */);
    if (isAgentError(error) || options.signal?.aborted) throw error;
    throw new AgentError('ASSET_DOWNLOAD_FAILED', `${asset.name}: download from ${url} broke off: ${errorMessage(error)}`, { cause: error });
  }
}

function unavailableMessage(asset: AssetEntry, mirrorFile: string | undefined): string {
  const looked = mirrorFile === undefined ? `no mirror set (--mirror or ${MIRROR_ENV})` : `not in the mirror (${mirrorFile})`;
  const upstream = asset.upstream === null ? 'no upstream URL' : 'downloads are off (--offline)';
  return `${asset.name}: ${looked} and ${upstream}. To get it: ${asset.obtain}`;
}

function asAgentError(error: unknown, code: ErrorCode, context: string): AgentError {
  return isAgentError(error) ? error : new AgentError(code, `${context}: ${errorMessage(error)}`, { cause: error });
}

async function makeDir(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
  } catch (error) {
    throw new AgentError('STORAGE_WRITE_FAILED', `cannot create the assets directory ${dir}: ${errorMessage(error)}`, { cause: error });
  }
}

function isDirectory(dir: string): boolean {
  return fs.statSync(dir, { throwIfNoEntry: false })?.isDirectory() ?? false;
}

function isFile(file: string): boolean {
  return fs.statSync(file, { throwIfNoEntry: false })?.isFile() ?? false;
}
