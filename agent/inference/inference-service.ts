import { isDeepStrictEqual } from 'node:util';
import { AgentError } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import { LoadedModel, type SessionSettings } from './loaded-model.js';
import { InferenceThreads } from './session-worker.js';
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

  constructor(
    private readonly resolved: ResolvedModel,
    private readonly settings: SessionSettings,
    private readonly log: Logger,
  ) {}

  /** LoadedModel.load, tracked so that halt() can wait for its warm-up runs. */
  private async load(resolved: ResolvedModel): Promise<LoadedModel> {
    const loading = LoadedModel.load(resolved, this.settings, this.threads);
    this.loading.add(loading);
    try {
      const model = await loading;
      this.live.add(model);
      return model;
    } finally {
      this.loading.delete(loading);
    }
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
      { model: this.model.id, version: this.model.version, file: this.resolved.modelPath, threads: this.settings.intraOpThreads, providers },
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
   * One frame outside the cameras' flow (the self-test's golden images): it waits for a free
   * lane of the serving model, as a camera frame would, so the frame path is never blocked.
   */
  async runStill(frame: Frame): Promise<InferenceResult> {
    for (;;) {
      const model = this.model;
      if (!model) throw new AgentError('INFERENCE_FAILED', 'no model is serving');
      if (model.canPrepare) return model.infer(frame);
      await new Promise((resolve) => setTimeout(resolve, 5));
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
      detail: { model: this.current, swaps: this.swaps },
    };
  }
}
