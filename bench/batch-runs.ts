/**
 * The timed loops of bench/batch.ts: frames/s of one model at one batch size and thread count,
 * through a bare onnxruntime session and through the agent's session worker (two lanes queued,
 * as the scheduler keeps them).
 */
import * as ort from 'onnxruntime-node';
import { SessionWorker } from '../agent/inference/session-worker.js';

export interface RunConfig {
  /** The model file (static batch 1, or with a batch axis). */
  file: string;
  batch: number;
  threads: number;
  /** B x 3 x H x W, the frames already preprocessed (float32 NCHW). */
  input: Float32Array;
  dims: number[];
}

export interface Timing {
  framesPerSecond: number;
  /** CPU ms (user + system, every thread of this process) per frame. */
  cpuMsPerFrame: number;
}

export function sessionOptions(threads: number): ort.InferenceSession.SessionOptions {
  // The agent's defaults (agent/config/schema.ts): graph optimisation all, arena on, no spinning.
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableCpuMemArena: true,
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

const cpuNow = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

/** Opened sessions are kept across rounds: a round times runs, not loading. */
const directSessions = new Map<string, ort.InferenceSession>();

async function directSession(config: RunConfig): Promise<ort.InferenceSession> {
  const key = `${config.file}|${config.threads}|${config.batch}`;
  let session = directSessions.get(key);
  if (!session) {
    session = await ort.InferenceSession.create(config.file, sessionOptions(config.threads));
    directSessions.set(key, session);
  }
  return session;
}

/** session.run in a loop on one prepared batch for `ms`, after one warm-up run. */
export async function timeDirect(config: RunConfig, ms: number): Promise<Timing> {
  const session = await directSession(config);
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', config.input, config.dims) };
  await session.run(feeds);
  let runs = 0;
  const cpuBefore = cpuNow();
  const started = performance.now();
  while (performance.now() - started < ms) {
    await session.run(feeds);
    runs++;
  }
  const elapsed = performance.now() - started;
  const frames = runs * config.batch;
  return { framesPerSecond: (frames * 1000) / elapsed, cpuMsPerFrame: (cpuNow() - cpuBefore) / frames };
}

interface WorkerEntry {
  worker: SessionWorker;
  lanes: Array<{ input: ArrayBuffer; output: ArrayBuffer | null; outputDims: readonly number[] | null }>;
}

const workers = new Map<string, WorkerEntry>();

async function workerSession(config: RunConfig, inputName: string, outputName: string): Promise<WorkerEntry> {
  const key = `${config.file}|${config.threads}|${config.batch}`;
  let entry = workers.get(key);
  if (!entry) {
    const worker = await SessionWorker.open(config.file, sessionOptions(config.threads));
    worker.bind({ inputName, inputType: 'float32', inputDims: config.dims, outputName });
    const lane = () => ({ input: config.input.slice().buffer as ArrayBuffer, output: null, outputDims: null });
    entry = { worker, lanes: [lane(), lane()] };
    workers.set(key, entry);
  }
  return entry;
}

/**
 * The agent's way: the session in its worker thread, two lanes queued so the worker never waits
 * for the main thread (what the scheduler does when frames are ready), for `ms`.
 */
export async function timeWorker(config: RunConfig, ms: number, inputName: string, outputName: string): Promise<Timing> {
  const entry = await workerSession(config, inputName, outputName);
  const runLane = async (index: number): Promise<void> => {
    const lane = entry.lanes[index]!;
    const outcome = await entry.worker.run(index, lane.input, lane.output, lane.outputDims);
    lane.input = outcome.input;
    lane.output = outcome.output;
    lane.outputDims = outcome.outputDims;
  };
  await Promise.all([runLane(0), runLane(1)]);
  let runs = 0;
  let stop = false;
  const cpuBefore = cpuNow();
  const started = performance.now();
  const timer = setTimeout(() => {
    stop = true;
  }, ms);
  const loop = async (index: number): Promise<void> => {
    while (!stop) {
      await runLane(index);
      runs++;
    }
  };
  await Promise.all([loop(0), loop(1)]);
  clearTimeout(timer);
  const elapsed = performance.now() - started;
  const frames = runs * config.batch;
  return { framesPerSecond: (frames * 1000) / elapsed, cpuMsPerFrame: (cpuNow() - cpuBefore) / frames };
}

export async function releaseAll(): Promise<void> {
  for (const session of directSessions.values()) await session.release();
  directSessions.clear();
  for (const entry of workers.values()) await entry.worker.close();
  workers.clear();
}
