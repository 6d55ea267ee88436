import fs from 'node:fs';
import path from 'node:path';
import { sha256File } from '../common/checksum.js';
import type { MonitorConfig } from '../config/monitor-schema.js';
import { AgentError, errorMessage, isAgentError } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { AgentEvent } from '../storage/event-schema.js';
import { compareGolden, type GoldenFile, goldenFileSchema, type GoldenVehicle, type Mismatch } from './golden.js';

/** The serving model as the self-test sees it. */
export interface SelfTestModel {
  id: string;
  version: string;
  modelPath: string;
  /** The manifest's sha256, which the file was checked against when it was loaded. */
  sha256: string | undefined;
  goldenFile: string | undefined;
}

export interface SelfTestReport {
  at: string;
  model: { id: string; version: string };
  trigger: 'start' | 'interval' | 'model-changed' | 'command';
  passed: boolean;
  /** First failing check's code; null when passed. */
  code: 'SELF_TEST_FILE_CHANGED' | 'SELF_TEST_MISMATCH' | 'SELF_TEST_UNAVAILABLE' | null;
  file: { loaded: string; onDisk: string | null; changed: boolean };
  golden: { file: string; images: number; mismatches: Mismatch[] } | null;
  durationMs: number;
  message: string;
}

export interface SelfTestDeps {
  config: Pick<MonitorConfig, 'selfTest'>;
  model: () => SelfTestModel | undefined;
  /** One still image through the live session, as the cameras' frames go: the vehicles found. */
  runImage: (file: string) => Promise<GoldenVehicle[]>;
  /** Where catalogued images are when a golden file names one not beside it. */
  assetsDir: string;
  recordEvent: (event: AgentEvent) => void;
  /** Told after each run (the monitor re-evaluates its `selfTest` rule). */
  onReport?: (report: SelfTestReport) => void;
  hashFile?: (file: string) => Promise<string>;
  now?: () => number;
  log: Logger;
}

/**
 * The golden-sample self-test: at start, after a model change and every intervalHours, the model
 * file on disk is hashed against the hash it was loaded with (a file changed under the running
 * agent would be loaded at the next restart), and the model's golden images go through the
 * live session (a broken runtime or a faulty CPU changes what it finds). Runs off the frame
 * path: one image at a time, each waiting for a free inference lane like a camera frame.
 */
export class SelfTestService implements Service {
  readonly name = 'self-test';
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<SelfTestReport> | undefined;
  private last: SelfTestReport | undefined;
  private lastRunAt = 0;
  private readonly loadedHashes = new Map<string, string>();
  private readonly now: () => number;
  private readonly hashFile: (file: string) => Promise<string>;

  constructor(private readonly deps: SelfTestDeps) {
    this.now = deps.now ?? Date.now;
    this.hashFile = deps.hashFile ?? sha256File;
  }

  async start(): Promise<void> {
    if (!this.deps.config.selfTest.enabled) return;
    const intervalMs = this.deps.config.selfTest.intervalHours * 3_600_000;
    this.timer = setInterval(() => this.tick(), Math.min(60_000, Math.max(1000, intervalMs / 4)));
    void this.runNow('start').catch((error: unknown) => this.deps.log.warn({ err: errorMessage(error) }, 'self-test could not run'));
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  get latest(): SelfTestReport | undefined {
    return this.last;
  }

  /** The `selfTest` alert metric: 1 when the last run for this model failed, 0 when it passed. */
  observation(model: { modelId: string; modelVersion: string }): { value: number; low: number; high: number; n: number } | null {
    const last = this.last;
    if (!last || last.model.id !== model.modelId || last.model.version !== model.modelVersion) return null;
    const value = last.passed ? 0 : 1;
    return { value, low: value, high: value, n: 1 };
  }

  private tick(): void {
    const model = this.deps.model();
    if (!model || this.running) return;
    const changed = this.last !== undefined && (this.last.model.id !== model.id || this.last.model.version !== model.version);
    const due = this.now() - this.lastRunAt >= this.deps.config.selfTest.intervalHours * 3_600_000;
    if (!changed && !due) return;
    void this.runNow(changed ? 'model-changed' : 'interval').catch((error: unknown) =>
      this.deps.log.warn({ err: errorMessage(error) }, 'self-test could not run'),
    );
  }

  /** Runs the self-test now (or joins the run in flight). */
  runNow(trigger: SelfTestReport['trigger']): Promise<SelfTestReport> {
    this.running ??= this.run(trigger).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(trigger: SelfTestReport['trigger']): Promise<SelfTestReport> {
    const model = this.deps.model();
    if (!model) throw new AgentError('SELF_TEST_UNAVAILABLE', 'no model is serving');
    const started = this.now();
    const key = `${model.id}@${model.version}:${model.modelPath}`;
    // The hash it was loaded with: the manifest's (checked at load), else the first one seen.
    let loaded = model.sha256 ?? this.loadedHashes.get(key);
    const onDisk = await this.hashFile(model.modelPath).catch((error: unknown) => {
      this.deps.log.warn({ file: model.modelPath, err: errorMessage(error) }, 'self-test: the model file cannot be read');
      return null;
    });
    if (loaded === undefined && onDisk !== null) {
      loaded = onDisk;
      this.loadedHashes.set(key, onDisk);
    }
    const fileChanged = onDisk === null || onDisk !== loaded;
    let golden: SelfTestReport['golden'] = null;
    let unavailable: string | undefined;
    if (model.goldenFile) {
      try {
        golden = await this.runGolden(model.goldenFile);
      } catch (error) {
        unavailable = `${isAgentError(error) ? `${error.code}: ` : ''}${errorMessage(error)}`;
      }
    }
    const code = fileChanged
      ? 'SELF_TEST_FILE_CHANGED'
      : unavailable
        ? 'SELF_TEST_UNAVAILABLE'
        : golden && golden.mismatches.length > 0
          ? 'SELF_TEST_MISMATCH'
          : null;
    const report: SelfTestReport = {
      at: new Date(started).toISOString(),
      model: { id: model.id, version: model.version },
      trigger,
      passed: code === null,
      code,
      file: { loaded: loaded ?? '', onDisk, changed: fileChanged },
      golden,
      durationMs: this.now() - started,
      message: describe(code, model, golden, unavailable),
    };
    this.record(report);
    return report;
  }

  private async runGolden(file: string): Promise<NonNullable<SelfTestReport['golden']>> {
    let golden: GoldenFile;
    try {
      golden = goldenFileSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
    } catch (error) {
      throw new AgentError('SELF_TEST_UNAVAILABLE', `golden samples ${file} cannot be read: ${errorMessage(error)}`, { cause: error });
    }
    const mismatches: Mismatch[] = [];
    for (const sample of golden.samples) {
      const image = [path.resolve(path.dirname(file), sample.image), path.join(this.deps.assetsDir, sample.image)].find((candidate) =>
        fs.existsSync(candidate),
      );
      if (!image) throw new AgentError('SELF_TEST_UNAVAILABLE', `golden image ${sample.image} is neither beside ${file} nor in ${this.deps.assetsDir}`);
      const found = await this.deps.runImage(image);
      mismatches.push(...compareGolden(sample.image, sample.vehicles, found, golden.tolerance));
    }
    return { file, images: golden.samples.length, mismatches };
  }

  private record(report: SelfTestReport): void {
    const previous = this.last;
    this.last = report;
    this.lastRunAt = Date.parse(report.at);
    const model = `${report.model.id}@${report.model.version}`;
    if (!report.passed) {
      this.deps.log.error({ model, code: report.code, mismatches: report.golden?.mismatches.length ?? 0 }, `self-test failed: ${report.message}`);
      this.deps.recordEvent({
        kind: 'self-test-failed',
        subject: report.model.id,
        code: report.code ?? undefined,
        detail: { model, trigger: report.trigger, message: report.message, mismatches: report.golden?.mismatches.slice(0, 10) ?? [] },
      });
    } else {
      this.deps.log.info({ model, images: report.golden?.images ?? 0, ms: report.durationMs }, 'self-test passed');
      if (previous && !previous.passed)
        this.deps.recordEvent({ kind: 'self-test-passed', subject: report.model.id, detail: { model, trigger: report.trigger } });
    }
    this.deps.onReport?.(report);
  }

  health(): Health {
    const last = this.last;
    return {
      ok: !last || last.passed,
      state: last && !last.passed ? 'degraded' : 'ok',
      detail: last
        ? { at: last.at, model: `${last.model.id}@${last.model.version}`, passed: last.passed, code: last.code, images: last.golden?.images ?? 0 }
        : { at: null },
    };
  }
}

function describe(code: SelfTestReport['code'], model: SelfTestModel, golden: SelfTestReport['golden'], unavailable: string | undefined): string {
  if (code === 'SELF_TEST_FILE_CHANGED') return `${model.modelPath} is not the file that was loaded (its sha256 changed, or it cannot be read)`;
  if (code === 'SELF_TEST_UNAVAILABLE') return unavailable ?? 'the golden samples cannot be run';
  if (code === 'SELF_TEST_MISMATCH') {
    const first = golden!.mismatches[0]!;
    return `${golden!.mismatches.length} golden mismatch(es); first: ${first.image} ${first.problem} ${first.vehicle.type} ${first.vehicle.score}${first.found !== undefined ? ` (found ${first.found})` : ''}`;
  }
  return golden ? `file unchanged, ${golden.images} golden image(s) as expected` : 'file unchanged (the model ships no golden samples)';
}
