import crypto from 'node:crypto';
import type { EvidenceConfig } from '../config/monitor-schema.js';
import { errorMessage, systemErrorCode } from '../errors.js';
import type { Picture } from '../inference/picture.js';
import type { InferenceResult } from '../inference/result.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { Db } from '../storage/database.js';
import type { AgentEvent } from '../storage/event-schema.js';
import { type EvidenceSample, EvidenceStore, EvidenceWriter } from './evidence-store.js';
import { type EncodeJpeg, sharpJpeg } from './jpeg-encoder.js';
import { type Doomed, EvidenceQuota } from './quota.js';
import { RandomCompleteness } from './random-completeness.js';
import { SampleFiles } from './sample-files.js';
import { EvidenceSampler, type SampleReason, sampleReasons } from './sampler.js';

export interface EvidenceDeps {
  db: () => Db;
  /** Where the JPEG files go (monitor.evidence.dir, default <dataDir>/evidence). */
  dir: string;
  config: EvidenceConfig;
  /** The camera's ROI as [x, y, w, h] fractions, or null: the picture shows only that part. */
  cropOf: (cameraId: string) => [number, number, number, number] | null;
  recordEvent: (event: AgentEvent) => void;
  encode?: EncodeJpeg;
  random?: () => number;
  now?: () => number;
  log: Logger;
}

interface ReasonStats {
  /** Chosen by the sampler. */
  sampled: number;
  /** Written (JPEG file and row). */
  encoded: number;
  /** Chosen while another sample was being written: dropped, never queued. */
  droppedBusy: number;
  failed: number;
}

/** Retention is checked this often even when no sample comes (a camera off for a month). */
const RETENTION_CHECK_MS = 10 * 60 * 1000;
/** An evidence-pruned event at the first pruning, then at most this often (with the sums in between). */
const PRUNED_EVENT_INTERVAL_MS = 60 * 60 * 1000;
const ERROR_LOG_INTERVAL_MS = 60_000;

interface Writing {
  store: EvidenceStore;
  writer: EvidenceWriter;
  quota: EvidenceQuota;
  completeness: RandomCompleteness;
  /** Deletes the rows of pruned samples (and moves randomCompleteSince) in one transaction. */
  forget: (doomed: readonly Doomed[]) => void;
  /**
   * Inserts a sample's row and deletes what the quota then takes, in one transaction: the table
   * is never seen over the quota. Returns the samples whose files must go.
   */
  admit: (sample: EvidenceSample, now: number) => Doomed[];
}

/**
 * Keeps frames for retraining: JPEG snapshots of the picture the model saw, with its detections
 * (docs/evidence.md). offer() is on the frame path and costs one random draw and a scan of the
 * scores; only a chosen frame, and only when no other sample is being written, is copied out of
 * the model's input and handed to the encoder. Everything after that is asynchronous: encode
 * (sharp, in the thread pool), file written under a temporary name and renamed, row inserted,
 * then the quota.
 */
export class EvidenceService implements Service {
  readonly name = 'evidence';
  private readonly sampler: EvidenceSampler;
  private readonly files: SampleFiles;
  private readonly encode: EncodeJpeg;
  private readonly now: () => number;
  private writing: Writing | undefined;
  private inFlight: Promise<void> | undefined;
  private pruning: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly stats: Record<SampleReason, ReasonStats>;
  private disputedMarked = 0;
  private swept = 0;
  private consecutiveFailures = 0;
  private lastError: string | undefined;
  private lastErrorLogAt = -Infinity;
  private lastPrunedEventAt: number | undefined;
  private readonly prunedSinceEvent = { samples: 0, bytes: 0, byAge: 0, byQuota: 0, disputed: 0, random: 0 };
  private prunedTotal = 0;
  /** The table's totals for health (read every few seconds), read again only after the writer changed a row. */
  private totals: { samples: number; bytes: number; changes: number } | undefined;

  constructor(private readonly deps: EvidenceDeps) {
    const { config } = deps;
    this.sampler = new EvidenceSampler(config, deps.random);
    this.files = new SampleFiles(deps.dir);
    this.encode = deps.encode ?? sharpJpeg;
    this.now = deps.now ?? Date.now;
    this.stats = Object.fromEntries(sampleReasons.map((reason) => [reason, { sampled: 0, encoded: 0, droppedBusy: 0, failed: 0 }])) as Record<
      SampleReason,
      ReasonStats
    >;
  }

  async start(): Promise<void> {
    const db = this.deps.db();
    const { config } = this.deps;
    const writer = new EvidenceWriter(db);
    this.totals = undefined;
    const completeness = new RandomCompleteness(db);
    completeness.begin(this.now());
    const quota = new EvidenceQuota(db, {
      maxBytes: config.maxMegabytes * 1024 * 1024,
      maxSamples: config.maxSamples,
      retentionMs: config.retentionDays * 24 * 60 * 60 * 1000,
    });
    const forget = db.transaction((doomed: readonly Doomed[]) => {
      for (const sample of doomed) {
        writer.delete(sample.sampleId);
        if (sample.reason === 'random') completeness.lost(sample.capturedAt);
      }
    });
    this.writing = {
      store: new EvidenceStore(db),
      writer,
      quota,
      completeness,
      forget,
      admit: db.transaction((sample: EvidenceSample, now: number) => {
        writer.insert(sample);
        const doomed = quota.plan(now);
        forget(doomed);
        return doomed;
      }),
    };
    await this.files.ensure();
    await this.sweep(db);
    await this.enforce();
    this.timer = setInterval(() => {
      this.pruning ??= this.enforce().finally(() => {
        this.pruning = undefined;
      });
    }, RETENTION_CHECK_MS);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const writing = this.writing;
    // New offers are refused from here; the sample being written and a pruning finish first.
    this.writing = undefined;
    if (writing) {
      await this.inFlight;
      await this.pruning;
    }
  }

  /**
   * Called for every result, on the frame path. `picture` is valid only during this call and is
   * invoked only for a frame that is kept; `resultId` is the result's message id.
   */
  offer(result: InferenceResult, picture: () => Picture, resultId: string): void {
    const writing = this.writing;
    if (writing === undefined) return;
    const reason = this.sampler.choose(result);
    if (reason === undefined) return;
    const stats = this.stats[reason];
    stats.sampled++;
    if (this.inFlight !== undefined) {
      stats.droppedBusy++;
      return;
    }
    let copy: Picture;
    try {
      copy = picture();
    } catch (error) {
      // Never the frame path's failure: the sample is lost and counted.
      stats.failed++;
      this.failed(error, 'evidence picture not available');
      return;
    }
    this.sampler.took(result, reason);
    this.inFlight = this.keep(writing, result, copy, resultId, reason).finally(() => {
      this.inFlight = undefined;
    });
  }

  /** Feedback disputed these results: their samples are marked, and the quota takes them last. */
  markDisputed(resultIds: readonly string[]): void {
    const writing = this.writing;
    if (writing === undefined || resultIds.length === 0) return;
    try {
      this.disputedMarked += writing.writer.markDisputed(resultIds);
    } catch (error) {
      this.failed(error, 'marking disputed evidence failed');
    }
  }

  /** The evidence table, for the commands (undefined before start and after stop). */
  get store(): EvidenceStore | undefined {
    return this.writing?.store;
  }

  get sampleFiles(): SampleFiles {
    return this.files;
  }

  /** Since when every random sample taken is still held (ms), or null before the first start. */
  randomCompleteSince(): number | null {
    return this.writing?.completeness.since() ?? null;
  }

  /** Resolves when the sample being written (if any) is stored: for tests and the bench. */
  async idle(): Promise<void> {
    await this.inFlight;
    await this.pruning;
  }

  private async keep(writing: Writing, result: InferenceResult, picture: Picture, resultId: string, reason: SampleReason): Promise<void> {
    const stats = this.stats[reason];
    const sampleId = crypto.randomUUID();
    const file = `${sampleId}.jpg`;
    const detections = JSON.stringify(result.vehicles);
    let written = false;
    let doomed: Doomed[];
    try {
      const jpeg = await this.encode(picture, this.deps.config.jpegQuality);
      await this.files.write(file, jpeg);
      written = true;
      const now = this.now();
      doomed = writing.admit(
        {
          sampleId,
          resultId,
          cameraId: result.cameraId,
          modelId: result.model.id,
          modelVersion: result.model.version,
          capturedAt: result.capturedAt,
          reason,
          file,
          bytes: jpeg.length,
          width: picture.width,
          height: picture.height,
          detections,
          crop: this.deps.cropOf(result.cameraId),
          disputed: false,
          createdAt: now,
        },
        now,
      );
      stats.encoded++;
      this.consecutiveFailures = 0;
    } catch (error) {
      stats.failed++;
      this.failed(error, 'evidence sample not kept');
      // A file without its row would be swept at the next start; it goes now.
      if (written) await this.files.remove(file).catch((cause: unknown) => this.failed(cause, 'evidence file not removed'));
      return;
    }
    await this.removeFiles(doomed);
  }

  /** Retention and quota with no new sample (at start, and every RETENTION_CHECK_MS). */
  private async enforce(): Promise<void> {
    const writing = this.writing;
    if (!writing) return;
    try {
      const doomed = writing.quota.plan(this.now());
      if (doomed.length === 0) return;
      writing.forget(doomed);
      await this.removeFiles(doomed);
    } catch (error) {
      this.failed(error, 'evidence pruning failed');
    }
  }

  /** After their rows are gone (a file left by a crash here is swept at the next start). */
  private async removeFiles(doomed: readonly Doomed[]): Promise<void> {
    if (doomed.length === 0) return;
    for (const sample of doomed) {
      await this.files.remove(sample.file).catch((error: unknown) => this.failed(error, 'evidence file not removed'));
    }
    this.countPruned(doomed, this.now());
  }

  private countPruned(doomed: readonly Doomed[], now: number): void {
    const sums = this.prunedSinceEvent;
    for (const sample of doomed) {
      sums.samples++;
      sums.bytes += sample.bytes;
      if (sample.why === 'age') sums.byAge++;
      else sums.byQuota++;
      if (sample.disputed) sums.disputed++;
      if (sample.reason === 'random') sums.random++;
    }
    this.prunedTotal += doomed.length;
    if (this.lastPrunedEventAt !== undefined && now - this.lastPrunedEventAt < PRUNED_EVENT_INTERVAL_MS) return;
    this.lastPrunedEventAt = now;
    const since = this.writing?.completeness.since();
    this.deps.recordEvent({
      kind: 'evidence-pruned',
      subject: 'evidence',
      detail: { ...sums, randomCompleteSince: since === undefined ? null : new Date(since).toISOString() },
    });
    sums.samples = sums.bytes = sums.byAge = sums.byQuota = sums.disputed = sums.random = 0;
  }

  /** Rows whose file is gone are deleted; files no row names, and temporary files, are removed. */
  private async sweep(db: Db): Promise<void> {
    const rows = db.prepare<[], { sample_id: string; file: string; reason: string; captured_at: number }>(
      'SELECT sample_id, file, reason, captured_at FROM evidence',
    );
    const known = rows.all();
    const { present, removed } = await this.files.sweep(new Set(known.map((row) => row.file)));
    const missing = known.filter((row) => !present.has(row.file));
    if (missing.length > 0) {
      this.writing!.forget(
        missing.map((row) => ({
          sampleId: row.sample_id,
          file: row.file,
          bytes: 0,
          reason: row.reason as SampleReason,
          disputed: false,
          capturedAt: row.captured_at,
          why: 'quota',
        })),
      );
    }
    this.swept = removed + missing.length;
    if (this.swept > 0) this.deps.log.warn({ filesRemoved: removed, rowsWithoutFile: missing.length }, 'evidence: swept what an interrupted run left');
  }

  private failed(error: unknown, what: string): void {
    this.consecutiveFailures++;
    this.lastError = systemErrorCode(error) ?? errorMessage(error);
    const now = this.now();
    if (now - this.lastErrorLogAt < ERROR_LOG_INTERVAL_MS) return;
    this.lastErrorLogAt = now;
    this.deps.log.error({ err: errorMessage(error), code: systemErrorCode(error) }, what);
  }

  health(): Health {
    const writing = this.writing;
    if (writing && this.totals?.changes !== writing.writer.changes) this.totals = { ...writing.store.totals(), changes: writing.writer.changes };
    const totals = writing ? this.totals : undefined;
    const sum = (key: keyof ReasonStats): number => sampleReasons.reduce((total, reason) => total + this.stats[reason][key], 0);
    const since = writing?.completeness.since();
    return {
      ok: this.consecutiveFailures === 0,
      state: writing === undefined ? 'stopped' : this.consecutiveFailures > 0 ? `failing: ${this.lastError}` : 'sampling',
      detail: {
        samples: totals?.samples ?? null,
        bytes: totals?.bytes ?? null,
        sampled: sum('sampled'),
        encoded: sum('encoded'),
        droppedBusy: sum('droppedBusy'),
        failed: sum('failed'),
        byReason: Object.fromEntries(sampleReasons.map((reason) => [reason, { ...this.stats[reason] }])),
        disputedMarked: this.disputedMarked,
        pruned: this.prunedTotal,
        swept: this.swept,
        randomCompleteSince: since === undefined ? null : new Date(since).toISOString(),
        ...(this.lastError ? { lastError: this.lastError } : {}),
      },
    };
  }
}
