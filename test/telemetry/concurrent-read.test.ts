import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { telemetryReportSchema } from '../../agent/cli/telemetry-report.js';
import { telemetryCommand } from '../../agent/cli/telemetry-command.js';
import { useTempDir } from '../support/temp-dir.js';
import { captureIo, createAgentDatabase } from './fixture.js';

const tempDir = useTempDir('cctv-telemetry-concurrent-');
const WRITER = fileURLToPath(new URL('./writer-child.mjs', import.meta.url));
const WRITE_FOR_MS = 5000;

interface WriterSummary {
  transactions: number;
  results: number;
  samples: number;
  failures: string[];
  checkpoints: number;
  checkpointsBusy: number;
  maxCommitMs: number;
  maxCheckpointMs: number;
}

let writer: ReturnType<typeof spawn> | undefined;
afterEach(() => {
  if (writer && writer.exitCode === null && writer.signalCode === null) writer.kill('SIGKILL');
  writer = undefined;
});

describe('reading while the daemon writes', () => {
  it('summaries and --follow run against a writer in WAL at full speed: no SQLITE_BUSY, the writer never fails, the file stays intact', async () => {
    const dir = tempDir();
    const { db, file } = createAgentDatabase(dir);
    db.close();
    writer = spawn(process.execPath, [WRITER, file, String(WRITE_FOR_MS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let writerOut = '';
    let writerErr = '';
    writer.stdout!.on('data', (chunk: Buffer) => (writerOut += chunk.toString()));
    writer.stderr!.on('data', (chunk: Buffer) => (writerErr += chunk.toString()));
    const writerExit = new Promise<number | null>((resolve) => writer!.once('exit', (code) => resolve(code)));

    // A follower alongside, polling fast, as `--follow --json` would.
    const followIo = captureIo();
    const stopFollow = new AbortController();
    const following = telemetryCommand(['--data-dir', dir, '--follow', '--json'], followIo, { signal: stopFollow.signal, pollMs: 20 });

    let reads = 0;
    const failures: string[] = [];
    const readMs: number[] = [];
    let lastResults = 0;
    const end = Date.now() + WRITE_FOR_MS + 500;
    while (Date.now() < end) {
      const io = captureIo();
      const json = reads % 2 === 0;
      const started = performance.now();
      const code = await telemetryCommand(['--data-dir', dir, '--since', '10m', ...(json ? ['--json'] : [])], io);
      readMs.push(performance.now() - started);
      reads += 1;
      if (code !== 0 || io.stderr() !== '') failures.push(`exit ${code}: ${io.stderr()}`);
      if (json && code === 0) lastResults = telemetryReportSchema.parse(JSON.parse(io.stdout())).vehicles.results;
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(await writerExit, writerErr).toBe(0);
    const summary = JSON.parse(writerOut) as WriterSummary;
    const followedLines = (): string[] => followIo.stdout().trim().split('\n').filter(Boolean);
    const deadline = Date.now() + 10_000;
    while (followedLines().length < summary.samples && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    stopFollow.abort();
    expect(await following).toBe(0);

    console.log(
      `writer: ${summary.results} results and ${summary.samples} samples in ${WRITE_FOR_MS} ms, ${summary.checkpoints} TRUNCATE checkpoints ` +
        `(${summary.checkpointsBusy} busy), longest commit ${summary.maxCommitMs.toFixed(1)} ms, longest checkpoint ${summary.maxCheckpointMs.toFixed(1)} ms; ` +
        `reader: ${reads} summaries, median ${readMs.sort((a, b) => a - b)[Math.floor(readMs.length / 2)]!.toFixed(0)} ms, longest ${readMs.at(-1)!.toFixed(0)} ms`,
    );
    expect(failures).toEqual([]);
    expect(summary.failures).toEqual([]);
    // Readers never hold a snapshot long enough for a checkpoint to give up waiting (2 s).
    expect(summary.checkpointsBusy).toBe(0);
    expect(reads).toBeGreaterThan(5);
    expect(lastResults).toBeGreaterThan(0);

    // The follower saw samples in insertion order, never one twice, and said nothing on stderr.
    const followed = followedLines().map((line) => JSON.parse(line) as { at: string });
    expect(followIo.stderr()).toBe('');
    expect(followed).toHaveLength(summary.samples);
    expect(followed.every((line, index) => index === 0 || line.at >= followed[index - 1]!.at)).toBe(true);

    const check = new Database(file, { readonly: true });
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok');
    expect((check.prepare('SELECT count(*) AS n FROM results').get() as { n: number }).n).toBe(summary.results);
    check.close();
  }, 30_000);
});
