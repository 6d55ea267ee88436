import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';
import { AgentError, errorLines } from '../errors.js';
import { sampleSummary } from '../evidence/evidence-schema.js';
import { detectionsOf, EvidenceStore } from '../evidence/evidence-store.js';
import { type ExportFormat, exportEvidence, exportFormats } from '../evidence/export.js';
import { RandomCompleteness } from '../evidence/random-completeness.js';
import { SampleFiles } from '../evidence/sample-files.js';
import { type SampleReason, sampleReasons } from '../evidence/sampler.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { TelemetryReader } from '../telemetry/telemetry-reader.js';
import { locateDatabase } from './database-location.js';
import type { CliIo } from './io.js';
import { formatTable } from './table.js';

export const EVIDENCE_USAGE = `usage:
  cctv-agent evidence list [--camera ID] [--reason random|low-confidence] [--disputed] [--limit N] [--json]
                           [--config FILE | --data-dir DIR]
  cctv-agent evidence export DIR --format coco|yolo [--camera ID] [--reason random|low-confidence]
                           [--config FILE | --data-dir DIR]

list: the evidence samples held (JPEG snapshots with the model's detections, docs/evidence.md).
export: writes them as a dataset (COCO: DIR/annotations.json; YOLO: DIR/labels and DIR/data.yaml;
the JPEGs under DIR/images), with reviewers' feedback applied: a false positive is removed, a
wrong type retyped, a reported miss with a box added. Both read the database only, agent
running or not. The evidence directory is monitor.evidence.dir (default <dataDir>/evidence).
`;

function reasonOf(value: string | undefined): SampleReason | undefined {
  if (value === undefined) return undefined;
  if (!(sampleReasons as readonly string[]).includes(value)) throw new AgentError('USAGE', `--reason must be one of ${sampleReasons.join(', ')}`);
  return value as SampleReason;
}

/** The evidence directory: from the config when there is one, else <data-dir>/evidence. */
function evidenceDir(options: { config?: string | undefined; dataDir?: string | undefined }, dataDir: string, env: NodeJS.ProcessEnv): string {
  if (options.config === undefined && options.dataDir !== undefined) return path.join(dataDir, 'evidence');
  const { config } = loadConfig({ ...(options.config ? { file: options.config } : {}), env });
  return path.resolve(dataDir, config.monitor.evidence.dir ?? 'evidence');
}

/** `cctv-agent evidence list|export`. */
export async function evidenceCommand(argv: string[], io: CliIo): Promise<number> {
  try {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === '--help' || sub === '-h' || rest.includes('--help')) {
      io.out.write(EVIDENCE_USAGE);
      return sub === undefined ? ExitCode.CONFIG : ExitCode.OK;
    }
    if (sub !== 'list' && sub !== 'export') throw new AgentError('USAGE', `unknown evidence subcommand "${sub}"\n${EVIDENCE_USAGE}`);
    const { values, positionals } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: sub === 'export',
      options: {
        camera: { type: 'string' },
        reason: { type: 'string' },
        disputed: { type: 'boolean' },
        limit: { type: 'string' },
        format: { type: 'string' },
        json: { type: 'boolean' },
        config: { type: 'string', short: 'c' },
        'data-dir': { type: 'string' },
      },
    });
    const reason = reasonOf(values.reason);
    const where = { config: values.config, dataDir: values['data-dir'] };
    const location = locateDatabase(where, io.env);
    const reader = TelemetryReader.open(location.file)!;
    try {
      if (reader.schemaVersion < 3)
        throw new AgentError(
          'STORAGE_READ_FAILED',
          `${location.file} is from an agent without evidence (schema ${reader.schemaVersion}): start the current agent once`,
        );
      const db = reader.database;
      if (sub === 'list') {
        const limit = values.limit === undefined ? 1000 : Number(values.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new AgentError('USAGE', '--limit must be a positive integer');
        const samples = new EvidenceStore(db).list({ cameraId: values.camera, reason, disputed: values.disputed ? true : undefined, limit });
        const summaries = samples.map((sample) => sampleSummary(sample, detectionsOf(sample).length));
        const totals = new EvidenceStore(db).totals();
        const since = new RandomCompleteness(db).peek();
        if (values.json) {
          io.out.write(
            `${JSON.stringify({ file: location.file, totals, randomCompleteSince: since === undefined ? null : new Date(since).toISOString(), samples: summaries }, null, 2)}\n`,
          );
          return ExitCode.OK;
        }
        io.out.write(
          `${totals.samples} samples, ${(totals.bytes / 1048576).toFixed(1)} MiB; every random sample since ${since === undefined ? '-' : new Date(since).toISOString()} is held\n`,
        );
        if (summaries.length > 0)
          io.out.write(
            formatTable([
              ['sample', 'captured', 'camera', 'model', 'reason', 'disputed', 'vehicles', 'size', 'bytes'],
              ...summaries.map((s) => [
                s.sampleId,
                s.capturedAt,
                s.cameraId,
                `${s.model.id}@${s.model.version}`,
                s.reason,
                s.disputed ? 'yes' : '',
                String(s.detections),
                `${s.width}x${s.height}`,
                String(s.bytes),
              ]),
            ]),
          );
        return ExitCode.OK;
      }
      const dir = positionals[0];
      if (dir === undefined || positionals.length > 1) throw new AgentError('USAGE', `evidence export takes one directory\n${EVIDENCE_USAGE}`);
      const format = values.format as ExportFormat | undefined;
      if (format === undefined || !exportFormats.includes(format)) throw new AgentError('USAGE', `--format must be one of ${exportFormats.join(', ')}`);
      const files = new SampleFiles(evidenceDir(where, location.dataDir, io.env));
      const summary = await exportEvidence(db, files, dir, format, { cameraId: values.camera, reason });
      if (values.json) io.out.write(`${JSON.stringify(summary, null, 2)}\n`);
      else
        io.out.write(
          `${summary.format}: ${summary.images} images, ${summary.boxes} boxes (${summary.reviewed} images reviewed) in ${summary.dir}` +
            `${summary.skipped > 0 ? `; ${summary.skipped} pruned while exporting` : ''}${summary.missesWithoutBox > 0 ? `; ${summary.missesWithoutBox} reported misses had no box` : ''}\n`,
        );
      return ExitCode.OK;
    } finally {
      reader.close();
    }
  } catch (error) {
    for (const line of errorLines(error)) io.err.write(`${line}\n`);
    if (error instanceof TypeError && 'code' in error) return ExitCode.CONFIG; // parseArgs
    return error instanceof AgentError && (error.code === 'USAGE' || error.code.startsWith('CONFIG_')) ? ExitCode.CONFIG : ExitCode.FATAL;
  }
}
