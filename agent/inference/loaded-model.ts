import type * as ort from 'onnxruntime-node';
import type { Roi } from '../config/schema.js';
import { AgentError, errorMessage } from '../errors.js';
import type { Frame } from '../ingest/frame.js';
import type { FrameGeometry } from '../ingest/frame-geometry.js';
import { createClassificationDecoder, type ClassificationDecoder } from './decode-classification.js';
import { createDetectionDecoder, expectedDetectionRows, type DetectionDecoder } from './decode-detection.js';
import type { ModelManifest } from './manifest.js';
import { sha256File } from '../common/checksum.js';
import type { ResolvedModel } from './model-files.js';
import { pictureOfInput, type Picture } from './picture.js';
import { createPreprocessor, type Preprocessor } from './preprocess.js';
import { RunFailed, SessionWorker, type InferenceThreads, type SessionInfo } from './session-worker.js';
import type { InferenceResult } from './result.js';

export interface SessionSettings {
  intraOpThreads: number;
  /** Sessions, each in its own worker thread, that run the two lanes side by side (1 or 2; default 1). */
  sessions?: number;
  interOpThreads: number;
  graphOptimization: 'disabled' | 'basic' | 'extended' | 'all';
  executionProviders: string[];
  scoreThreshold?: number;
  cpuMemArena: boolean;
  spinWait: boolean;
}

/** The frame geometry ffmpeg must produce for a model. */
export function geometryOf(manifest: ModelManifest): FrameGeometry {
  const { input } = manifest;
  return {
    width: input.width,
    height: input.height,
    pixelFormat: input.colorOrder === 'BGR' ? 'bgr24' : 'rgb24',
    resize: input.resize,
  };
}

function dimsOf(shape: ReadonlyArray<number | string> | undefined): string {
  return shape ? `[${shape.join(', ')}]` : '[?]';
}

function checkAgainstManifest(session: SessionInfo, model: ResolvedModel): void {
  const { manifest, labels } = model;
  const input = session.inputMetadata.find((meta) => meta.name === manifest.input.name);
  if (!input?.isTensor) {
    throw new AgentError('MODEL_MISMATCH', `${manifest.id}: input "${manifest.input.name}" not in the model (it has ${session.inputNames.join(', ')})`);
  }
  if (input.type !== manifest.input.dtype) {
    throw new AgentError('MODEL_MISMATCH', `${manifest.id}: input dtype is ${input.type}, manifest says ${manifest.input.dtype}`);
  }
  const { width, height, layout } = manifest.input;
  const expected = layout === 'NCHW' ? [1, 3, height, width] : [1, height, width, 3];
  const actual = input.shape;
  const fits = actual.length === 4 && actual.every((dim, i) => typeof dim !== 'number' || dim === expected[i] || (i === 0 && dim === -1));
  if (!fits) throw new AgentError('MODEL_MISMATCH', `${manifest.id}: input shape ${dimsOf(actual)} contradicts the manifest's ${layout} ${dimsOf(expected)}`);
  const output = session.outputMetadata.find((meta) => meta.name === manifest.output.name);
  if (!output?.isTensor) {
    throw new AgentError('MODEL_MISMATCH', `${manifest.id}: output "${manifest.output.name}" not in the model (it has ${session.outputNames.join(', ')})`);
  }
  const dims = output.shape.filter((dim): dim is number => typeof dim === 'number');
  if (manifest.task === 'detection') {
    const last = output.shape[output.shape.length - 1];
    if (typeof last === 'number' && last !== 5 + labels.length) {
      throw new AgentError('MODEL_MISMATCH', `${manifest.id}: output rows have ${last} values, but 5 + ${labels.length} labels = ${5 + labels.length}`);
    }
    const rows = expectedDetectionRows(manifest);
    const actualRows = output.shape[output.shape.length - 2];
    if (rows !== undefined && typeof actualRows === 'number' && actualRows !== rows) {
      throw new AgentError('MODEL_MISMATCH', `${manifest.id}: output has ${actualRows} rows, the strides ${manifest.output.strides.join('/')} give ${rows}`);
    }
  } else if (dims.length === output.shape.length) {
    const classes = dims.reduce((product, dim) => product * dim, 1);
    if (classes !== labels.length)
      throw new AgentError('MODEL_MISMATCH', `${manifest.id}: output has ${classes} classes, the manifest lists ${labels.length} labels`);
  }
}

/**
 * An onnxruntime session (in its own worker thread) with the configured execution providers,
 * CPU last. When a provider is not available in this build or machine (no GPU), the session
 * is made on the CPU alone.
 */
async function createSession(
  resolved: ResolvedModel,
  settings: SessionSettings,
  threads: InferenceThreads | undefined,
): Promise<{ session: SessionWorker; providers: string[] }> {
  const { manifest, modelPath } = resolved;
  const options = (executionProviders: string[]): ort.InferenceSession.SessionOptions => ({
    executionProviders,
    // onnxruntime prints a missing provider library to stderr itself; the fallback is reported by us.
    ...(executionProviders.length > 1 ? { logSeverityLevel: 4 as const } : {}),
    intraOpNumThreads: settings.intraOpThreads,
    interOpNumThreads: settings.interOpThreads,
    graphOptimizationLevel: settings.graphOptimization,
    enableCpuMemArena: settings.cpuMemArena,
    extra: { session: { intra_op: { allow_spinning: settings.spinWait ? '1' : '0' }, inter_op: { allow_spinning: settings.spinWait ? '1' : '0' } } },
  });
  const providers = [...new Set([...settings.executionProviders, 'cpu'])];
  let firstError: unknown;
  for (const attempt of providers.length > 1 ? [providers, ['cpu']] : [providers]) {
    try {
      return { session: await SessionWorker.open(modelPath, options(attempt), threads), providers: attempt };
    } catch (error) {
      firstError ??= error;
    }
  }
  throw new AgentError('MODEL_LOAD_FAILED', `${manifest.id}: onnxruntime cannot load ${modelPath}: ${errorMessage(firstError).split('\n')[0]}`, {
    cause: firstError,
  });
}

/**
 * One input buffer and its output buffer, and the metadata of the frame prepared into it. Two
 * lanes let the next frame be prepared (and the last one decoded) while the worker runs one.
 * Both buffers travel to the worker for a run and come back: they are re-wrapped after it.
 */
export interface Lane {
  readonly index: number;
  input: Float32Array | Uint8Array;
  output: Float32Array | undefined;
  outputDims: readonly number[] | null;
  busy: boolean;
  cameraId: string;
  seq: number;
  capturedAt: number;
  sourceWidth: number;
  sourceHeight: number;
  roi: Roi | undefined;
  /** ms spent in preprocessing, run and decoding: the frame's inference time. */
  workMs: number;
}

/**
 * One model ready to run: its onnxruntime session or two (each in a worker thread), two reused lanes, and
 * the pre- and post-processing the manifest asks for. prepare() copies a frame into a free
 * lane (the frame can be released at once), execute() runs it, finish() decodes it and frees
 * the lane.
 */
export class LoadedModel {
  private readonly lanes: [Lane, Lane];
  private readonly preprocess: Preprocessor;
  private readonly decodeDetections: DetectionDecoder | undefined;
  private readonly decodeClasses: ClassificationDecoder | undefined;
  private readonly inputIsUint8: boolean;
  private stillsWaiting = 0;
  readonly geometry: FrameGeometry;

  private constructor(
    readonly resolved: ResolvedModel,
    private readonly sessions: readonly SessionWorker[],
    scoreThreshold: number | undefined,
    readonly providers: string[],
  ) {
    const { manifest, labels } = resolved;
    const { width, height, layout, dtype } = manifest.input;
    this.geometry = geometryOf(manifest);
    this.inputIsUint8 = dtype === 'uint8';
    const dims = layout === 'NCHW' ? [1, 3, height, width] : [1, height, width, 3];
    for (const session of sessions) session.bind({ inputName: manifest.input.name, inputType: dtype, inputDims: dims, outputName: manifest.output.name });
    const lane = (index: number): Lane => ({
      index,
      input: this.inputIsUint8 ? new Uint8Array(width * height * 3) : new Float32Array(width * height * 3),
      output: undefined,
      outputDims: null,
      busy: false,
      cameraId: '',
      seq: -1,
      capturedAt: 0,
      sourceWidth: 0,
      sourceHeight: 0,
      roi: undefined,
      workMs: 0,
    });
    this.lanes = [lane(0), lane(1)];
    this.preprocess = createPreprocessor(manifest.input);
    if (manifest.task === 'detection') {
      this.decodeDetections = createDetectionDecoder(manifest, labels, this.geometry, scoreThreshold ?? manifest.output.scoreThreshold);
    } else {
      this.decodeClasses = createClassificationDecoder(manifest, labels);
    }
  }

  /** threads: where the session's worker comes from and goes back to (the agent's); none: a thread of its own. */
  static async load(resolved: ResolvedModel, settings: SessionSettings, threads?: InferenceThreads): Promise<LoadedModel> {
    const { manifest, modelPath } = resolved;
    if (manifest.sha256 !== undefined) {
      const actual = await sha256File(modelPath);
      if (actual !== manifest.sha256) {
        throw new AgentError('MODEL_LOAD_FAILED', `${manifest.id}: ${modelPath} has sha256 ${actual}, the manifest says ${manifest.sha256}`);
      }
    }
    const sessions: SessionWorker[] = [];
    let providers: string[] = [];
    try {
      // Lane i runs in session i % sessions: with two, the lanes run side by side.
      for (let i = 0; i < Math.min(2, Math.max(1, settings.sessions ?? 1)); i++) {
        const opened = await createSession(resolved, settings, threads);
        sessions.push(opened.session);
        providers = opened.providers;
      }
      checkAgainstManifest(sessions[0]!.info, resolved);
      const model = new LoadedModel(resolved, sessions, settings.scoreThreshold, providers);
      // Warm-up, once per lane: the first run allocates and plans, and gives each lane its output buffer.
      await Promise.all([model.warmLane(), model.warmLane()]);
      return model;
    } catch (error) {
      for (const session of sessions) await session.close();
      throw error;
    }
  }

  private async warmLane(): Promise<void> {
    const lane = this.prepare(null);
    try {
      await this.execute(lane);
    } finally {
      this.abandon(lane);
    }
  }

  get id(): string {
    return this.resolved.manifest.id;
  }

  get version(): string {
    return this.resolved.manifest.version;
  }

  /**
   * A free lane the live pipeline may take: at most two frames are between prepare() and
   * finish(), and none is offered while a still image waits (see holdForStill).
   */
  get canPrepare(): boolean {
    return this.stillsWaiting === 0 && this.hasFreeLane;
  }

  get hasFreeLane(): boolean {
    return !this.lanes[0].busy || !this.lanes[1].busy;
  }

  /**
   * Keeps the live pipeline from taking freed lanes until the returned release is called. The
   * scheduler refills a lane in the same tick it frees it, so without this a still image (the
   * self-test, `model run` on a live agent) would never find one while a camera is saturating
   * the model. The pipeline loses at most the frames decoded during one run.
   */
  holdForStill(): () => void {
    this.stillsWaiting++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.stillsWaiting--;
    };
  }

  /** Copies one frame (null: whatever the lane holds, for the warm-up) into a free lane. */
  prepare(frame: Frame | null): Lane {
    const lane = this.lanes[0].busy ? this.lanes[1] : this.lanes[0];
    if (lane.busy) throw new Error('prepare() with both lanes busy');
    const started = performance.now();
    lane.busy = true;
    if (frame) {
      this.preprocess(frame.data, lane.input);
      lane.cameraId = frame.cameraId;
      lane.seq = frame.seq;
      lane.capturedAt = frame.capturedAt;
      lane.sourceWidth = frame.sourceWidth;
      lane.sourceHeight = frame.sourceHeight;
      lane.roi = frame.roi;
    } else {
      lane.cameraId = '';
      lane.seq = -1;
      lane.capturedAt = Date.now();
      lane.sourceWidth = 0;
      lane.sourceHeight = 0;
      lane.roi = undefined;
    }
    lane.workMs = performance.now() - started;
    return lane;
  }

  /**
   * Runs a prepared lane in the worker; the lane stays busy until finish() or abandon(). A
   * failed run rejects with an INFERENCE_FAILED error, the lane's buffers given back.
   */
  async execute(lane: Lane): Promise<void> {
    const started = performance.now();
    try {
      const outcome = await this.sessions[lane.index % this.sessions.length]!.run(
        lane.index,
        lane.input.buffer as ArrayBuffer,
        (lane.output?.buffer as ArrayBuffer | undefined) ?? null,
        lane.outputDims,
      );
      this.attach(lane, outcome.input, outcome.output);
      lane.outputDims = outcome.outputDims;
    } catch (error) {
      if (!(error instanceof RunFailed)) throw error;
      this.attach(lane, error.input, error.output);
      throw new AgentError('INFERENCE_FAILED', `${this.id}: ${error.message}`, { cause: error });
    } finally {
      lane.workMs += performance.now() - started;
    }
  }

  private attach(lane: Lane, input: ArrayBuffer, output: ArrayBuffer | null): void {
    lane.input = this.inputIsUint8 ? new Uint8Array(input) : new Float32Array(input);
    if (output) lane.output = new Float32Array(output);
  }

  /** Decodes a lane's outputs into the result and frees the lane. */
  finish(lane: Lane): InferenceResult {
    const started = performance.now();
    const { manifest } = this.resolved;
    try {
      const data = lane.output!;
      const vehicles = this.decodeDetections ? this.decodeDetections(data, lane.sourceWidth, lane.sourceHeight, lane.roi) : [];
      const top = this.decodeClasses?.(data);
      const result: InferenceResult = {
        cameraId: lane.cameraId,
        seq: lane.seq,
        capturedAt: lane.capturedAt,
        model: { id: manifest.id, version: manifest.version },
        task: manifest.task,
        vehicles,
        inferenceMs: Math.round((lane.workMs + performance.now() - started) * 100) / 100,
      };
      if (top) result.top = top;
      return result;
    } finally {
      lane.busy = false;
    }
  }

  /**
   * The picture a lane's input holds (RGB, the letterbox left out), for an evidence sample. Valid
   * right after finish() until the lane is prepared again: the scheduler offers it only during
   * its onResult callback.
   */
  pictureOf(lane: Lane): Picture {
    return pictureOfInput(lane.input, this.resolved.manifest.input, this.geometry, lane.sourceWidth, lane.sourceHeight, lane.roi);
  }

  /** Frees a lane whose run failed. */
  abandon(lane: Lane): void {
    lane.busy = false;
  }

  /** One frame start to end (tests, warm-up); the agent's scheduler pipelines the three steps. */
  async infer(frame: Frame | null): Promise<InferenceResult> {
    const lane = this.prepare(frame);
    try {
      await this.execute(lane);
    } catch (error) {
      this.abandon(lane);
      throw error;
    }
    return this.finish(lane);
  }

  /** Refuses new runs; resolves once the run in flight (if any) is back from onnxruntime. */
  async halt(): Promise<void> {
    await Promise.all(this.sessions.map((session) => session.halt()));
  }

  /** Sessions running the lanes (2: side by side). */
  get sessionCount(): number {
    return this.sessions.length;
  }

  /** Releases the session once no lane is in use (a swap may happen while one is). */
  async release(): Promise<void> {
    while (this.lanes[0].busy || this.lanes[1].busy) await new Promise((resolve) => setTimeout(resolve, 2));
    for (const session of this.sessions) await session.close();
  }
}
