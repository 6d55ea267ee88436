import os from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { AgentError } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import { LoadedModel, type SessionSettings } from './loaded-model.js';
import { InferenceThreads } from './session-worker.js';
import { chooseRunConfig, medianOf, type RunConfig, runConfigs, type ThreadTiming, timeRound } from './thread-choice.js';

type RunChoice = { chosen: RunConfig; measured: boolean; timings: ThreadTiming[] };

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
  // Two idle threads: a swap reuses both of a two-session model's worker threads.
  private readonly threads = new InferenceThreads(2);

  /** The last thread choice: by measurement ('auto') or as configured. */
  private threadChoice: RunChoice | undefined;
  private readonly measuredChoices = new Map<string, RunChoice>();

  constructor(
    private readonly resolved: ResolvedModel,
    private readonly settings: Omit<SessionSettings, 'intraOpThreads' | 'sessions'> & { intraOpThreads: number | 'auto'; sessions: number | 'auto' },
    private readonly log: Logger,
    private readonly cores: number = os.availableParallelism(),
    /** Called when a still image gives the lanes back (the scheduler may have frames waiting for one). */
    private readonly onLanesFreed: () => void = () => {},
  ) {}

  /** LoadedModel.load, tracked so that halt() can wait for its warm-up runs. */
  private async loadWith(resolved: ResolvedModel, config: RunConfig): Promise<LoadedModel> {
    const loading = LoadedModel.load(resolved, { ...this.settings, intraOpThreads: config.threads, sessions: config.sessions }, this.threads);
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
   * Loads a model as configured, or, where threads or sessions are 'auto', with each candidate
   * configuration timed on this CPU (TIMED_RUNS rounds each, alternated so all see the same
   * machine) and keeps the fastest; a model already timed in this run keeps its configuration.
   */
  private async load(resolved: ResolvedModel): Promise<LoadedModel> {
    const { intraOpThreads, sessions } = this.settings;
    const candidates = runConfigs(this.cores, { threads: intraOpThreads, sessions });
    if (candidates.length === 1) {
      this.threadChoice = { chosen: candidates[0]!, measured: false, timings: [] };
      return this.loadWith(resolved, candidates[0]!);
    }
    // Each model is timed once per agent run: swapping back and forth between two models
    // would otherwise load the extra sessions each time (RSS grew by 26 MB over 20 swaps).
    const known = this.measuredChoices.get(resolved.manifest.id) ?? this.choiceFromSelection(resolved);
    if (known) {
      this.threadChoice = known;
      return this.loadWith(resolved, known.chosen);
    }
    const loaded: Array<{ config: RunConfig; model: LoadedModel; samples: number[] }> = [];
    try {
      for (const config of candidates) loaded.push({ config, model: await this.loadWith(resolved, config), samples: [] });
      for (let round = 0; round < TIMED_RUNS; round++) {
        for (const entry of round % 2 ? [...loaded].reverse() : loaded)
          entry.samples.push(await timeRound(() => entry.model.infer(null), entry.config.sessions));
      }
      const choice = await chooseRunConfig(candidates, async (config) => ({
        ...config,
        msPerRun: Math.round(medianOf(loaded.find((entry) => entry.config === config)!.samples) * 100) / 100,
        runs: TIMED_RUNS,
      }));
      this.threadChoice = this.remember(resolved.manifest.id, { ...choice, measured: true });
      const kept = loaded.find((entry) => entry.config.threads === choice.chosen.threads && entry.config.sessions === choice.chosen.sessions)!;
      loaded.splice(loaded.indexOf(kept), 1);
      return kept.model;
    } finally {
      for (const other of loaded) await this.release(other.model);
    }
  }

  /** model.manifest "auto" timed this model in each configuration already: its figures decide. */
  private choiceFromSelection(resolved: ResolvedModel): RunChoice | undefined {
    const selection = resolved.selection;
    if (!selection || selection.chosen !== resolved.manifest.id || selection.run === undefined) return undefined;
    const timings = selection.timings.filter((timing) => timing.model === resolved.manifest.id).map(({ model: _model, ...timing }) => timing);
    return this.remember(resolved.manifest.id, { chosen: selection.run, measured: true, timings });
  }

  /** A measured configuration, kept for the model's later loads in this run and logged once. */
  private remember(modelId: string, choice: RunChoice): RunChoice {
    this.measuredChoices.set(modelId, choice);
    this.log.info(
      { model: modelId, chosen: choice.chosen.threads, sessions: choice.chosen.sessions, timings: choice.timings },
      'inference threads chosen by measurement',
    );
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
      {
        model: this.model.id,
        version: this.model.version,
        file: this.resolved.modelPath,
        threads: this.threadChoice?.chosen.threads,
        sessions: this.threadChoice?.chosen.sessions,
        providers,
      },
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
          return await model.infer(frame);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      release?.();
      this.onLanesFreed();
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
          ? {
              threads: this.threadChoice.chosen.threads,
              sessions: this.threadChoice.chosen.sessions,
              threadsBy: this.threadChoice.measured ? 'measurement' : 'config',
              threadTimings: this.threadChoice.timings,
            }
          : {}),
      },
    };
  }
}
