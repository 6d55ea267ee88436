import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type * as Ort from 'onnxruntime-node';
import { AgentError } from '../errors.js';

/**
 * onnxruntime-node's `session.run` is synchronous: its promise only defers the call with
 * setImmediate, and the whole inference then blocks the thread that called it. In the agent's
 * main thread that froze the event loop for every frame (the ffmpeg pipes, MQTT keep-alives,
 * SQLite flushes all waited) and left no room to decode or preprocess the next frame while
 * one ran. So each session lives in its own worker thread; frames and outputs travel as
 * transferred ArrayBuffers (moved, not copied), and the main thread only awaits.
 *
 * One worker per session: a model being loaded for a hot swap does not pause the one serving.
 * The released one's thread waits for the next swap (InferenceThreads) instead of ending.
 */

/** What the main thread needs to know of a session to check it against a manifest. */
export interface SessionInfo {
  inputNames: readonly string[];
  outputNames: readonly string[];
  inputMetadata: readonly Ort.InferenceSession.ValueMetadata[];
  outputMetadata: readonly Ort.InferenceSession.ValueMetadata[];
}

export interface RunBinding {
  inputName: string;
  inputType: 'float32' | 'uint8';
  inputDims: readonly number[];
  outputName: string;
}

export interface RunOutcome {
  input: ArrayBuffer;
  output: ArrayBuffer;
  outputDims: readonly number[];
}

type ToWorker =
  | { kind: 'open'; modelPath: string; options: Ort.InferenceSession.SessionOptions }
  | ({ kind: 'bind' } & RunBinding)
  | { kind: 'run'; lane: number; input: ArrayBuffer; output: ArrayBuffer | null; outputDims: readonly number[] | null }
  | { kind: 'close' };

type FromWorker =
  | { kind: 'opened'; info: SessionInfo }
  | { kind: 'open-failed'; message: string }
  | { kind: 'ran'; lane: number; input: ArrayBuffer; output: ArrayBuffer; outputDims: readonly number[] }
  | { kind: 'run-failed'; lane: number; input: ArrayBuffer; output: ArrayBuffer | null; message: string }
  | { kind: 'closed' };

/**
 * The worker's whole program. It runs from its source text (`eval`), so it may use only its
 * parameter and what it requires: that way the same code runs from the TypeScript sources
 * (tests, benchmarks) and from the compiled agent, with no worker file to build or locate.
 */
function sessionWorkerMain(ortPath: string): void {
  const { parentPort } = require('node:worker_threads') as typeof import('node:worker_threads');
  const ort = require(ortPath) as typeof Ort;
  const port = parentPort!;
  let session: Ort.InferenceSession | undefined;
  let binding: RunBinding | undefined;
  // One feeds and one fetches object per lane: two runs can be queued at once, and
  // onnxruntime-node reads them only when the deferred run starts.
  const feedsOf: Array<Record<string, Ort.Tensor>> = [];
  const fetchesOf: Array<Record<string, Ort.Tensor>> = [];
  const post = (message: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(message, transfer);
  const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

  async function run(message: Extract<ToWorker, { kind: 'run' }>): Promise<void> {
    const { lane, input } = message;
    try {
      if (!session || !binding) throw new Error('run before the session was opened and bound');
      const data = binding.inputType === 'uint8' ? new Uint8Array(input) : new Float32Array(input);
      feedsOf[lane] ??= {};
      fetchesOf[lane] ??= {};
      const feeds = feedsOf[lane];
      const fetches = fetchesOf[lane];
      feeds[binding.inputName] = new ort.Tensor(binding.inputType, data, binding.inputDims as number[]);
      if (message.output && message.outputDims) {
        // The output is written straight into the buffer the main thread handed over.
        fetches[binding.outputName] = new ort.Tensor('float32', new Float32Array(message.output), message.outputDims as number[]);
        await session.run(feeds, fetches);
        post({ kind: 'ran', lane, input, output: message.output, outputDims: message.outputDims }, [input, message.output]);
        return;
      }
      // First run of a lane: learn the output's size; the copy becomes the lane's reused buffer.
      const outputs = await session.run(feeds, [binding.outputName]);
      const tensor = outputs[binding.outputName]!;
      const output = new Float32Array(tensor.data as Float32Array).buffer;
      for (const name in outputs) outputs[name]!.dispose();
      post({ kind: 'ran', lane, input, output, outputDims: tensor.dims }, [input, output]);
    } catch (error) {
      const transfer = message.output ? [input, message.output] : [input];
      post({ kind: 'run-failed', lane, input, output: message.output, message: messageOf(error) }, transfer);
    }
  }

  port.on('message', (message: ToWorker) => {
    switch (message.kind) {
      case 'open':
        ort.InferenceSession.create(message.modelPath, message.options).then(
          (opened) => {
            session = opened;
            const { inputNames, outputNames, inputMetadata, outputMetadata } = opened;
            post({ kind: 'opened', info: { inputNames, outputNames, inputMetadata, outputMetadata } });
          },
          (error: unknown) => post({ kind: 'open-failed', message: messageOf(error) }),
        );
        return;
      case 'bind':
        binding = { inputName: message.inputName, inputType: message.inputType, inputDims: message.inputDims, outputName: message.outputName };
        return;
      case 'run':
        void run(message);
        return;
      case 'close': {
        const closing = session;
        session = undefined;
        (closing ? closing.release() : Promise.resolve()).then(
          () => post({ kind: 'closed' }),
          () => post({ kind: 'closed' }),
        );
        return;
      }
    }
  });
}

const workerSource = `(${sessionWorkerMain.toString()})(${JSON.stringify(createRequire(import.meta.url).resolve('onnxruntime-node'))});`;

interface PendingRun {
  resolve: (outcome: RunOutcome) => void;
  reject: (error: Error) => void;
  input: ArrayBuffer;
  output: ArrayBuffer | null;
}

/**
 * One onnxruntime session in its own thread. run() hands a lane's input (and, after the first
 * run, its output buffer) to the worker and resolves with both buffers back.
 */
export class SessionWorker {
  private readonly pending: Array<PendingRun | undefined> = [];
  private inFlight = 0;
  private onIdle: (() => void) | undefined;
  private idle: Promise<void> | undefined;
  private closing: (() => void) | undefined;
  private failure: Error | undefined;

  private exited = false;
  private readonly onWorkerMessage = (message: FromWorker): void => this.onMessage(message);
  private readonly onWorkerError = (error: Error): void => this.fail(new AgentError('INFERENCE_FAILED', `inference worker failed: ${error.message}`));
  private readonly onWorkerExit = (): void => {
    this.exited = true;
    this.fail(new AgentError('INFERENCE_FAILED', 'inference worker exited'));
    this.closing?.();
  };

  private constructor(
    private readonly worker: Worker,
    readonly info: SessionInfo,
    private readonly threads: InferenceThreads | undefined,
  ) {
    worker.on('message', this.onWorkerMessage);
    worker.on('error', this.onWorkerError);
    worker.on('exit', this.onWorkerExit);
  }

  /**
   * Opens the model in a worker: an idle one of `threads` when given (a hot swap then reuses
   * the thread the previous model ran in), else a new one. A model onnxruntime refuses gives
   * the worker back.
   */
  static async open(modelPath: string, options: Ort.InferenceSession.SessionOptions, threads?: InferenceThreads): Promise<SessionWorker> {
    const worker = threads ? threads.take() : newWorker();
    let onMessage: ((message: FromWorker) => void) | undefined;
    let onError: ((error: Error) => void) | undefined;
    const opened = await new Promise<{ info: SessionInfo } | { error: string; broken: boolean }>((resolve) => {
      onMessage = (message) => {
        if (message.kind === 'opened') resolve({ info: message.info });
        else if (message.kind === 'open-failed') resolve({ error: message.message, broken: false });
      };
      onError = (error) => resolve({ error: error.message, broken: true });
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.postMessage({ kind: 'open', modelPath, options } satisfies ToWorker);
    });
    // Only ours: Worker keeps listeners of its own (they start and stop its message port).
    worker.off('message', onMessage!);
    worker.off('error', onError!);
    if ('error' in opened) {
      if (threads && !opened.broken) await threads.give(worker);
      else await worker.terminate();
      throw new Error(opened.error);
    }
    return new SessionWorker(worker, opened.info, threads);
  }

  bind(binding: RunBinding): void {
    this.worker.postMessage({ kind: 'bind', ...binding } satisfies ToWorker);
  }

  /**
   * Runs one lane. The buffers are detached here until the promise settles: the caller must
   * use the ones it resolves (or rejects) with.
   */
  run(lane: number, input: ArrayBuffer, output: ArrayBuffer | null, outputDims: readonly number[] | null): Promise<RunOutcome> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending[lane]) return Promise.reject(new Error(`lane ${lane} is already running`));
    return new Promise<RunOutcome>((resolve, reject) => {
      this.pending[lane] = { resolve, reject, input, output };
      this.inFlight++;
      const transfer = output ? [input, output] : [input];
      this.worker.postMessage({ kind: 'run', lane, input, output, outputDims } satisfies ToWorker, transfer);
    });
  }

  private onMessage(message: FromWorker): void {
    if (message.kind === 'closed') {
      this.closing?.();
      return;
    }
    if (message.kind !== 'ran' && message.kind !== 'run-failed') return;
    const pending = this.pending[message.lane];
    this.pending[message.lane] = undefined;
    if (!pending) return;
    this.settled();
    if (message.kind === 'ran') pending.resolve({ input: message.input, output: message.output, outputDims: message.outputDims });
    else pending.reject(new RunFailed(message.message, message.input, message.output));
  }

  /** The worker is gone: every run in flight fails, with fresh buffers in place of the lost ones. */
  private fail(error: Error): void {
    this.failure ??= error;
    for (let lane = 0; lane < this.pending.length; lane++) {
      const pending = this.pending[lane];
      this.pending[lane] = undefined;
      if (!pending) continue;
      this.settled();
      const output = pending.output && new ArrayBuffer(pending.output.byteLength);
      pending.reject(new RunFailed(error.message, new ArrayBuffer(pending.input.byteLength), output));
    }
  }

  private settled(): void {
    this.inFlight--;
    if (this.inFlight === 0) this.onIdle?.();
  }

  /**
   * Refuses new runs and resolves once none is in flight. The process must not exit while a
   * run is inside onnxruntime: the worker's teardown would meet the binding mid-call and
   * abort the whole process (SIGABRT) instead of exiting with the code asked for.
   */
  halt(): Promise<void> {
    this.failure ??= new AgentError('INFERENCE_FAILED', 'the agent is exiting');
    if (this.inFlight === 0) return Promise.resolve();
    this.idle ??= new Promise<void>((resolve) => {
      this.onIdle = resolve;
    });
    return this.idle;
  }

  /** Releases the session in the worker, then gives the worker back to its pool or ends it. */
  async close(): Promise<void> {
    // A halted or broken worker is not asked to release anything, nor kept for the next model.
    const usable = this.failure === undefined;
    if (usable) {
      const closed = new Promise<void>((resolve) => {
        this.closing = resolve;
      });
      this.worker.postMessage({ kind: 'close' } satisfies ToWorker);
      await closed;
    }
    this.failure ??= new AgentError('INFERENCE_FAILED', 'session closed');
    this.worker.off('message', this.onWorkerMessage);
    this.worker.off('error', this.onWorkerError);
    this.worker.off('exit', this.onWorkerExit);
    if (this.threads && usable && !this.exited) await this.threads.give(this.worker);
    else await this.worker.terminate();
  }
}

function newWorker(): Worker {
  return new Worker(workerSource, { eval: true });
}

/**
 * The worker threads of one inference service: a thread whose session was released waits
 * here for the next model. Without it every hot swap started a new thread (a V8 isolate) and
 * ended the old one, and RSS grew by 14-26 MB over 20 swaps instead of staying flat.
 */
export class InferenceThreads {
  private readonly idle: Worker[] = [];
  private readonly ended = new WeakSet<Worker>();

  constructor(private readonly keepIdle = 1) {}

  take(): Worker {
    for (let worker = this.idle.pop(); worker; worker = this.idle.pop()) {
      if (!this.ended.has(worker)) return worker;
    }
    const worker = newWorker();
    worker.once('exit', () => this.ended.add(worker));
    return worker;
  }

  async give(worker: Worker): Promise<void> {
    if (this.idle.length < this.keepIdle && !this.ended.has(worker)) this.idle.push(worker);
    else await worker.terminate();
  }

  /** Ends the idle threads (the service stops). */
  async close(): Promise<void> {
    const ending = this.idle.splice(0);
    await Promise.all(ending.map((worker) => worker.terminate()));
  }
}

/** A failed run, carrying the lane's buffers back so the lane stays usable. */
export class RunFailed extends Error {
  constructor(
    message: string,
    readonly input: ArrayBuffer,
    readonly output: ArrayBuffer | null,
  ) {
    super(message);
    this.name = 'RunFailed';
  }
}
