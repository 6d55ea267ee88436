import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { isDeepStrictEqual } from 'node:util';
import { AgentError } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import { LoadedModel, type SessionSettings } from './loaded-model.js';
import { InferenceThreads } from './session-worker.js';
import { chooseIntraOpThreads, medianOf, type ThreadTiming, threadCandidates } from './thread-choice.js';

/** Timed runs per candidate thread count (about 1 s in all for YOLOX-nano on 2 cores). */
const TIMED_RUNS = 12;
import type { ResolvedModel } from './model-files.js';
import type { InferenceResult } from './result.js';
import type { Frame } from '../ingest/frame.js';

/** What the scheduler needs: the model to use for the next frame (it changes on a swap). */
export interface ActiveModel {
  readonly active: LoadedModel | undefined;
}

export class InferenceService implements Service, ActiveModel {
  readonly name = 'inference';
  private model: LoadedModel | undefined;
  private swaps = 0;
  /** Every model with a session: the active one, one being loaded for a swap, one being released. */
  private readonly live = new Set<LoadedModel>();
  private readonly loading = new Set<Promise<unknown>>();
  private readonly threads = new InferenceThreads();

  /** The last thread choice: by measurement ('auto') or as configured. */
  private threadChoice: { chosen: number; measured: boolean; timings: ThreadTiming[] } | undefined;
  private readonly measuredChoices = new Map<string, { chosen: number; measured: boolean; timings: ThreadTiming[] }>();

  constructor(
    private readonly resolved: ResolvedModel,
    private readonly settings: Omit<SessionSettings, 'intraOpThreads'> & { intraOpThreads: number | 'auto' },
    private readonly log: Logger,
    private readonly cores: number = os.availableParallelism(),
  ) {}

  /** LoadedModel.load, tracked so that halt() can wait for its warm-up runs. */
  private async loadWith(resolved: ResolvedModel, intraOpThreads: number): Promise<LoadedModel> {
    const loading = LoadedModel.load(resolved, { ...this.settings, intraOpThreads }, this.threads);
    this.loading.add(loading);
    try {
      const model = await loading;
      this.live.add(model);
      return model;
    } finally {
      this.loading.delete(loading);
    }
  }

  /**
   * Loads a model with the configured thread count, or, with 'auto', with each candidate count
   * timed on this CPU (TIMED_RUNS runs each, alternated so both see the same machine) and keeps
   * the faster session; a model already timed in this run keeps its count.
   */
  private async load(resolved: ResolvedModel): Promise<LoadedModel> {
    const configured = this.settings.intraOpThreads;
    if (configured !== 'auto') {
      this.threadChoice = { chosen: configured, measured: false, timings: [] };
      return this.loadWith(resolved, configured);
    }
    // Each model is timed once per agent run: swapping back and forth between two models
    // would otherwise load an extra session each time (RSS grew by 26 MB over 20 swaps).
    const known = this.measuredChoices.get(resolved.manifest.id) ?? this.choiceFromSelection(resolved);
    if (known) {
      this.threadChoice = known;
      return this.loadWith(resolved, known.chosen);
    }
    const candidates = threadCandidates(this.cores);
    const sessions = new Map<number, LoadedModel>();
    try {
      for (const threads of candidates) sessions.set(threads, await this.loadWith(resolved, threads));
      const samples = new Map<number, number[]>(candidates.map((threads) => [threads, []]));
      for (let round = 0; round < TIMED_RUNS; round++) {
        for (const threads of round % 2 ? [...candidates].reverse() : candidates) {
          const started = performance.now();
          await sessions.get(threads)!.infer(null);
          samples.get(threads)!.push(performance.now() - started);
        }
      }
      const choice = await chooseIntraOpThreads(candidates, async (threads) => ({
        threads,
        msPerRun: Math.round(medianOf(samples.get(threads)!) * 100) / 100,
        runs: TIMED_RUNS,
      }));
      this.threadChoice = { ...choice, measured: true };
      this.measuredChoices.set(resolved.manifest.id, this.threadChoice);
      this.log.info({ model: resolved.manifest.id, chosen: choice.chosen, timings: choice.timings }, 'inference threads chosen by measurement');
      const kept = sessions.get(choice.chosen)!;
      sessions.delete(choice.chosen);
      return kept;
    } finally {
      for (const other of sessions.values()) await this.release(other);
    }
  }

  /** model.manifest "auto" timed this model at each thread count already: its figures decide. */
  private choiceFromSelection(resolved: ResolvedModel): { chosen: number; measured: boolean; timings: ThreadTiming[] } | undefined {
    const selection = resolved.selection;
    if (!selection || selection.chosen !== resolved.manifest.id || selection.threads === undefined) return undefined;
    const timings = selection.timings.filter((timing) => timing.model === resolved.manifest.id).map(({ model: _model, ...timing }) => timing);
    const choice = { chosen: selection.threads, measured: true, timings };
    this.measuredChoices.set(resolved.manifest.id, choice);
    this.log.info({ model: resolved.manifest.id, chosen: choice.chosen, timings }, 'inference threads chosen by measurement');
    return choice;
  }

  private async release(model: LoadedModel): Promise<void> {
    try {
      await model.release();
    } finally {
      this.live.delete(model);
    }
  }

  /**
   * For an exit without the orderly stop (a second signal, the shutdown deadline): no new
   * run starts, and this resolves once every run in flight, warm-ups included, is back.
   */
  async halt(): Promise<void> {
    await Promise.allSettled([...this.loading]);
    await Promise.all([...this.live].map((model) => model.halt()));
  }

  async start(): Promise<void> {
    this.model = await this.load(this.resolved);
    const { providers } = this.model;
    this.log.info(
      { model: this.model.id, version: this.model.version, file: this.resolved.modelPath, threads: this.threadChoice?.chosen, providers },
      'model loaded',
    );
    const wanted = this.settings.executionProviders.filter((provider) => provider !== 'cpu');
    if (wanted.some((provider) => !providers.includes(provider)))
      this.log.warn({ wanted, using: providers }, 'execution provider not available here: running on the CPU');
  }

  get active(): LoadedModel | undefined {
    return this.model;
  }

  /**
   * Hot swap: loads, checks and warms up the new model while the current one keeps serving,
   * switches between two frames, then releases the old session once its last run is over.
   * A model that fails any check is refused with a coded error and the current one stays.
   */
  async swapTo(resolved: ResolvedModel): Promise<{ from: string; to: string }> {
    const current = this.model;
    if (!current) throw new Error('inference used before start');
    const next = await this.load(resolved);
    if (!isDeepStrictEqual(next.geometry, current.geometry)) {
      await this.release(next);
      throw new AgentError(
        'MODEL_MISMATCH',
        `${resolved.manifest.id}: its input (${JSON.stringify(next.geometry)}) differs from the running model's (${JSON.stringify(current.geometry)}): ffmpeg must be restarted for it, so restart the agent`,
      );
    }
    this.model = next;
    this.swaps++;
    await this.release(current);
    const outcome = { from: `${current.id}@${current.version}`, to: `${next.id}@${next.version}` };
    this.log.info({ ...outcome, swaps: this.swaps, rssMb: Math.round(process.memoryUsage().rss / 1048576) }, 'model swapped');
    return outcome;
  }

  get current(): { id: string; version: string } | undefined {
    return this.model ? { id: this.model.id, version: this.model.version } : undefined;
  }

  /**
   * One frame outside the cameras' flow (the self-test's golden images): it holds the live
   * pipeline back until a lane of the serving model is free, then runs in it. A saturated camera
   * pauses for at most one run; it is never blocked for longer, and the still is never starved.
   */
  async runStill(frame: Frame): Promise<InferenceResult> {
    let heldOn: LoadedModel | undefined;
    let release: (() => void) | undefined;
    try {
      for (;;) {
        const model = this.model;
        if (!model) throw new AgentError('INFERENCE_FAILED', 'no model is serving');
        if (model !== heldOn) {
          // A swap while waiting: hold the new model's lanes instead.
          release?.();
          heldOn = model;
          release = model.holdForStill();
        }
        if (model.hasFreeLane) {
          release?.();
          release = undefined;
          // infer() takes the lane before its first await: the scheduler cannot take it first.
          return model.infer(frame);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      release?.();
    }
  }

  /** The serving model's files and manifest (its extras: drift reference, calibration, golden samples). */
  get currentFiles(): ResolvedModel | undefined {
    return this.model?.resolved;
  }

  async stop(): Promise<void> {
    const model = this.model;
    this.model = undefined;
    if (model) await this.release(model);
    await this.threads.close();
  }

  health(): Health {
    return {
      ok: this.model !== undefined,
      state: this.model ? 'ready' : 'not loaded',
      detail: {
        model: this.current,
        swaps: this.swaps,
        ...(this.model?.resolved.selection ? { modelChoice: this.model.resolved.selection } : {}),
        ...(this.threadChoice
          ? { threads: this.threadChoice.chosen, threadsBy: this.threadChoice.measured ? 'measurement' : 'config', threadTimings: this.threadChoice.timings }
          : {}),
      },
    };
  }
}
