import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { AgentError, errorMessage, isAgentError } from '../errors.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { formatTable } from './table.js';
import { ASSET_KINDS, assetsDir, loadCatalog, type AssetEntry, type AssetKind } from '../assets/catalog.js';
import { checkDerivedAsset } from '../assets/derived-asset.js';
import { checkLocalAsset, defaultMirror, fetchAssets, MIRROR_ENV, selectAssets, type AssetReport, type FetchProgress } from '../assets/fetch.js';

export interface AssetsCommandIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  env: NodeJS.ProcessEnv;
  /** Stops downloads (Ctrl-C); the part file is removed. */
  signal?: AbortSignal;
  /** Replaces global fetch (tests). */
  fetchImpl?: typeof fetch;
  /** The ffmpeg that derives clips and frames from their sources (see FetchOptions.ffmpegPath). */
  ffmpegPath?: string;
  /**
   * Makes the models that can be derived from fetched ones (the int8 model, by the quantizer)
   * when they could not be fetched. Injected by the CLI, so this folder does not depend on
   * onnxruntime. Returns the lines to print.
   */
  derive?: (destDir: string, progress: (line: string) => void) => Promise<string[]>;
}

export const ASSETS_USAGE = `usage:
  cctv-agent assets fetch [--mirror DIR] [--only KIND,...] [--dest DIR] [--offline] [NAME...]
  cctv-agent assets list [--mirror DIR] [--dest DIR] [NAME...]

fetch   makes the catalogued assets (models/catalog.json) present and sha256-verified in
        --dest (default models/assets): from the mirror first, else from upstream.
        Exit 0 when every required asset selected is there afterwards, else 1.
list    shows each asset: kind, whether it is required, whether it is present and
        verified, where fetch would take it from, and its licence.

--mirror DIR   a directory laid out as <DIR>/<mirrorPath> (default: $${MIRROR_ENV},
               else ../shared/assets beside the package when it exists)
--only KINDS   comma-separated: ${ASSET_KINDS.join(', ')}
--offline      never download; use the mirror only
--no-derive    do not make yolox-nano-int8-local.onnx when the catalogued int8 model is
               unavailable (by default it is made from yolox-nano.onnx, calibrated on the
               demo clip: docs/quantization.md)
`;

/** `cctv-agent assets <fetch|list> ...`; argv starts after "assets". Returns the process exit code. */
export async function runAssetsCommand(argv: string[], io: AssetsCommandIo): Promise<number> {
  try {
    const [subcommand, ...rest] = argv;
    switch (subcommand) {
      case 'fetch':
        return await runFetch(rest, io);
      case 'list':
        return await runList(rest, io);
      case 'help':
      case '--help':
      case '-h':
        io.out.write(ASSETS_USAGE);
        return ExitCode.OK;
      case undefined:
        io.err.write(ASSETS_USAGE);
        return ExitCode.CONFIG;
      default:
        throw new AgentError('USAGE', `unknown assets command "${subcommand}" (expected fetch or list)`);
    }
  } catch (error) {
    if (io.signal?.aborted) {
      // The fetcher removed any part file; whatever was completed before stays verified.
      io.err.write('assets: interrupted\n');
      return ExitCode.FATAL;
    }
    if (!isAgentError(error)) throw error;
    io.err.write(`error ${error.code}: ${error.message}\n  fix: ${error.fix}\n`);
    return error.code === 'USAGE' ? ExitCode.CONFIG : ExitCode.FATAL;
  }
}

interface CommonOptions {
  mirror: string | undefined;
  destDir: string;
}

function parse(argv: string[], extra: { only?: boolean; offline?: boolean }) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        mirror: { type: 'string' },
        dest: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        ...(extra.only ? { only: { type: 'string' as const } } : {}),
        ...(extra.offline ? { offline: { type: 'boolean' as const }, 'no-derive': { type: 'boolean' as const } } : {}),
      },
    });
  } catch (error) {
    throw new AgentError('USAGE', errorMessage(error));
  }
}

function commonOptions(values: { mirror?: string | boolean; dest?: string | boolean }, env: NodeJS.ProcessEnv): CommonOptions {
  const mirror = typeof values.mirror === 'string' ? path.resolve(values.mirror) : defaultMirror(env);
  return { mirror, destDir: assetsDir(typeof values.dest === 'string' ? values.dest : undefined) };
}

function parseKinds(text: string | undefined): AssetKind[] {
  if (text === undefined) return [];
  const kinds = text
    .split(',')
    .map((kind) => kind.trim())
    .filter((kind) => kind !== '');
  const bad = kinds.filter((kind) => !(ASSET_KINDS as readonly string[]).includes(kind));
  if (bad.length > 0) throw new AgentError('USAGE', `--only: unknown kind ${bad.join(', ')} (allowed: ${ASSET_KINDS.join(', ')})`);
  return kinds as AssetKind[];
}

async function runFetch(argv: string[], io: AssetsCommandIo): Promise<number> {
  const { values, positionals } = parse(argv, { only: true, offline: true });
  if (values.help) {
    io.out.write(ASSETS_USAGE);
    return ExitCode.OK;
  }
  const { mirror, destDir } = commonOptions(values, io.env);
  const only = parseKinds(typeof values['only'] === 'string' ? values['only'] : undefined);
  io.out.write(`assets: ${destDir}\nmirror: ${mirror ?? `none (set --mirror or ${MIRROR_ENV})`}\n`);

  const progress = new ProgressLines(io.out);
  const result = await fetchAssets({
    names: positionals,
    only,
    mirror,
    destDir,
    offline: values['offline'] === true,
    signal: io.signal,
    fetchImpl: io.fetchImpl,
    ...(io.ffmpegPath !== undefined ? { ffmpegPath: io.ffmpegPath } : {}),
    onProgress: (event) => progress.on(event),
  });

  const counts = countStatuses(result.reports);
  // Only when the int8 model was asked for (all assets, the models, or it by name): a user
  // fetching one clip does not want a quantization run.
  const int8Wanted = (positionals.length === 0 || positionals.includes('yolox-nano-int8.onnx')) && (only.length === 0 || only.includes('model'));
  if (io.derive && values['no-derive'] !== true && int8Wanted) {
    for (const line of await io.derive(destDir, (line) => io.out.write(`${line}\n`))) io.out.write(`${line}\n`);
  }
  const missingRequired = result.reports.filter((report) => report.required && report.path === undefined);
  io.out.write(`${counts}\n`);
  if (missingRequired.length > 0) {
    io.err.write(`required assets missing: ${missingRequired.map((report) => report.name).join(', ')}\n`);
  }
  return result.ok ? ExitCode.OK : ExitCode.FATAL;
}

function countStatuses(reports: AssetReport[]): string {
  const tally = new Map<string, number>();
  for (const report of reports) tally.set(report.status, (tally.get(report.status) ?? 0) + 1);
  const parts = [...tally].map(([status, count]) => `${count} ${status}`);
  return `${reports.length} assets: ${parts.join(', ') || 'none selected'}`;
}

/**
 * One line per asset. A download shows a percentage rewritten in place on a terminal; into a
 * file or pipe it would leave a line per update, so there the size is on the final line only.
 */
class ProgressLines {
  private readonly isTty: boolean;
  private lastPercent = -1;
  private inPlace = false;

  constructor(private readonly out: NodeJS.WritableStream) {
    this.isTty = (out as { isTTY?: boolean }).isTTY === true;
  }

  on(event: FetchProgress): void {
    if (event.type === 'start') {
      this.lastPercent = -1;
    } else if (event.type === 'download') {
      this.showDownload(event.asset, event.bytes, event.total);
    } else {
      if (this.inPlace) this.out.write('\r\x1b[2K');
      this.inPlace = false;
      this.out.write(formatReport(event.report, event.asset));
    }
  }

  private showDownload(asset: AssetEntry, bytes: number, total: number): void {
    if (!this.isTty) return;
    const percent = Math.min(100, Math.floor((bytes / total) * 100));
    if (percent === this.lastPercent) return;
    this.lastPercent = percent;
    this.inPlace = true;
    this.out.write(`\r\x1b[2K  ${asset.name}  downloading ${String(percent).padStart(3)}% (${megabytes(bytes)} of ${megabytes(total)})`);
  }
}

function formatReport(report: AssetReport, asset: AssetEntry): string {
  const optional = report.required ? '' : ' (optional)';
  let line: string;
  switch (report.status) {
    case 'present':
      line = 'ok (present)';
      break;
    case 'mirrored':
      line = 'ok (copied from mirror)';
      break;
    case 'downloaded':
      line = `ok (downloaded ${megabytes(asset.size)})`;
      break;
    case 'derived':
      line = `ok (derived from ${asset.derivedFrom?.asset ?? '?'}, provenance in ${asset.name}.provenance.json)`;
      break;
    default:
      line = `${report.status.toUpperCase()}${optional} ${report.error?.code ?? ''}: ${report.error?.message ?? ''}`;
  }
  const warnings = report.warnings.map((warning) => `      warning: ${warning}\n`).join('');
  return `  ${report.name}  ${line}\n${warnings}`;
}

function megabytes(bytes: number): string {
  return bytes < 100_000 ? `${(bytes / 1000).toFixed(1)} kB` : `${(bytes / 1_000_000).toFixed(1)} MB`;
}

async function runList(argv: string[], io: AssetsCommandIo): Promise<number> {
  const { values, positionals } = parse(argv, {});
  if (values.help) {
    io.out.write(ASSETS_USAGE);
    return ExitCode.OK;
  }
  const { mirror, destDir } = commonOptions(values, io.env);
  const catalog = loadCatalog();
  const rows: string[][] = [['NAME', 'KIND', 'REQUIRED', 'PRESENT', 'SOURCE', 'LICENCE']];
  for (const asset of selectAssets(catalog, positionals)) {
    const file = path.join(destDir, asset.name);
    const local = await checkLocalAsset(asset, file);
    const derived = local === 'ok' || local === 'missing' ? undefined : await checkDerivedAsset(asset, file, catalog);
    const present =
      local === 'ok'
        ? 'yes'
        : derived === 'ok'
          ? 'yes (derived)'
          : local === 'missing'
            ? 'no'
            : local.code === 'ASSET_HASH_MISMATCH'
              ? 'BAD SHA256'
              : 'UNREADABLE';
    rows.push([asset.name, asset.kind, asset.required ? 'yes' : 'no', present, sourceOf(asset, mirror), asset.licence]);
  }
  // The licence is the last column so its long texts do not push the other columns apart.
  io.out.write(`assets: ${destDir}\nmirror: ${mirror ?? 'none'}\n${formatTable(rows, { indent: '' })}`);
  return ExitCode.OK;
}

/** Where `assets fetch` would take the file from if it were missing. */
function sourceOf(asset: AssetEntry, mirror: string | undefined): string {
  if (mirror !== undefined && fs.existsSync(path.join(mirror, asset.mirrorPath))) return 'mirror';
  if (asset.upstream !== null) return `upstream (${new URL(asset.upstream).host})`;
  if (asset.derivedFrom !== undefined) return `derived from ${asset.derivedFrom.asset}`;
  return 'manual: see obtain in models/catalog.json';
}
