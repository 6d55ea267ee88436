import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import type { Frame } from '../ingest/frame.js';
import { LoadedModel, type SessionSettings } from './loaded-model.js';
import type { ResolvedModel } from './model-files.js';
import type { InferenceResult } from './result.js';

/** Runs frames through the current model; the model can be replaced between two frames. */
export interface FrameInference {
  infer(frame: Frame): Promise<InferenceResult>;
}

export class InferenceService implements Service, FrameInference {
  readonly name = 'inference';
  private model: LoadedModel | undefined;
  private running = 0;
  private failures = 0;

  constructor(private readonly resolved: ResolvedModel, private readonly settings: SessionSettings, private readonly log: Logger) {}

  async start(): Promise<void> {
    this.model = await LoadedModel.load(this.resolved, this.settings);
    this.log.info({ model: this.model.id, version: this.model.version, file: this.resolved.modelPath, threads: this.settings.intraOpThreads }, 'model loaded');
  }

  async infer(frame: Frame): Promise<InferenceResult> {
    const model = this.model;
    if (!model) throw new Error('inference used before start');
    this.running++;
    try {
      return await model.infer(frame);
    } catch (error) {
      this.failures++;
      throw error;
    } finally {
      this.running--;
    }
  }

  /**
   * Makes `next` the model for the next frame and releases the previous one once its
   * in-flight run (if any) is over. The caller loads and warms `next` up first.
   */
  async swap(next: LoadedModel): Promise<void> {
    const previous = this.model;
    this.model = next;
    this.log.info({ from: previous?.id, to: next.id, version: next.version }, 'model swapped');
    while (this.running > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    await previous?.release();
  }

  get current(): { id: string; version: string } | undefined {
    return this.model ? { id: this.model.id, version: this.model.version } : undefined;
  }

  async stop(): Promise<void> {
    const model = this.model;
    this.model = undefined;
    await model?.release();
  }

  health(): Health {
    return {
      ok: this.model !== undefined,
      state: this.model ? 'ready' : 'not loaded',
      detail: { model: this.current, failures: this.failures },
    };
  }
}
