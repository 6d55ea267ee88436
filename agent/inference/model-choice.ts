import os from 'node:os';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { describeCpuInt8 } from './cpu-features.js';
import { LoadedModel, type SessionSettings } from './loaded-model.js';
import { autoCandidates, type ModelSelection, type ResolvedModel } from './model-files.js';
import { InferenceThreads } from './session-worker.js';
import { describeRunConfig, medianOf, pickThreads, type RunConfig, runConfigs, type ThreadTiming, timeRound } from './thread-choice.js';

/** A model this close to the fastest (as a share) counts as fast as it: the earlier candidate (int8) wins. */
export const MODEL_TIE_SHARE = 0.05;
/** Timed runs per model and thread count, alternated (about 2 s in all for two YOLOX-nano models on 2 cores). */
const TIMED_RUNS = 10;

export interface TimedCandidate {
  id: string;
  timings: ThreadTiming[];
}

/**
 * The model to run among timed candidates, in order of preference (int8 first: smaller, and
 * what the quantizer made it for): each at its best thread count (pickThreads), the fastest
 * wins, except that an earlier candidate within MODEL_TIE_SHARE of it is preferred. So int8 is
 * never kept when it is measurably slower than float on this CPU.
 */
export function decideModel(candidates: readonly TimedCandidate[]): { chosen: string; run: RunConfig; reason: string } {
  if (candidates.length === 0) throw new Error('decideModel: no candidate');
  const best = candidates.map((candidate) => ({ id: candidate.id, ...pickThreads(candidate.timings) }));
  const fastest = Math.min(...best.map((entry) => entry.msPerRun));
  const chosen = best.find((entry) => entry.msPerRun <= fastest * (1 + MODEL_TIE_SHARE))!;
  const figures = best.map((entry) => `${entry.id} ${entry.msPerRun} ms (${describeRunConfig(entry)})`).join(', ');
  const run = { threads: chosen.threads, sessions: chosen.sessions };
  if (best.length === 1) return { chosen: chosen.id, run, reason: `the only candidate: ${figures}` };
  const quickest = best.find((entry) => entry.msPerRun === fastest)!;
  const why =
    chosen.id === quickest.id ? `fastest on this CPU` : `within ${MODEL_TIE_SHARE * 100}% of ${quickest.id}, and preferred (smaller; the quantizer's model)`;
  return { chosen: chosen.id, run, reason: `${chosen.id} ${why}: ${figures}` };
}

/** Why a candidate may not be chosen: its recorded agreement with its reference is below the minimum. */
export function agreementShortfall(model: ResolvedModel, minAgreement: number): string | undefined {
  const agreement = model.manifest.agreement;
  if (!agreement) return undefined; // a model without figures is its own reference (the float original)
  if (agreement.precision >= minAgreement && agreement.recall >= minAgreement) return undefined;
  return `agreement with ${agreement.reference} (precision ${agreement.precision}, recall ${agreement.recall} on ${agreement.frames} frames) below model.autoMinAgreement ${minAgreement}`;
}

/**
 * Times each model at each thread count on this CPU: all sessions loaded side by side, runs
 * alternated round by round (the order reversed every other round) so that every pair sees the
 * same machine, the median kept.
 */
export async function timeModels(models: readonly ResolvedModel[], settings: SessionSettings, configs: readonly RunConfig[]): Promise<TimedCandidate[]> {
  const pool = new InferenceThreads(0);
  const sessions: Array<{ id: string; config: RunConfig; model: LoadedModel; samples: number[] }> = [];
  try {
    for (const resolved of models)
      for (const config of configs)
        sessions.push({
          id: resolved.manifest.id,
          config,
          model: await LoadedModel.load(resolved, { ...settings, intraOpThreads: config.threads, sessions: config.sessions }, pool),
          samples: [],
        });
    for (let round = 0; round < TIMED_RUNS; round++) {
      for (const session of round % 2 ? [...sessions].reverse() : sessions)
        session.samples.push(await timeRound(() => session.model.infer(null), session.config.sessions));
    }
    return models.map((resolved) => ({
      id: resolved.manifest.id,
      timings: sessions
        .filter((session) => session.id === resolved.manifest.id)
        .map((session) => ({ ...session.config, msPerRun: Math.round(medianOf(session.samples) * 100) / 100, runs: TIMED_RUNS })),
    }));
  } finally {
    for (const session of sessions) await session.model.release();
    await pool.close();
  }
}

export interface AutoChoiceInput {
  assetsDir?: string;
  minAgreement: number;
  settings: Omit<SessionSettings, 'intraOpThreads' | 'sessions'> & { intraOpThreads: number | 'auto'; sessions: number | 'auto' };
  log: Logger;
  cores?: number;
  /** Injected in tests: times the candidates (default: timeModels on this CPU). */
  time?: (models: readonly ResolvedModel[], configs: readonly RunConfig[]) => Promise<TimedCandidate[]>;
}

/**
 * model.manifest "auto": the int8 and float YOLOX-nano present, int8 only at the required
 * agreement, timed on this CPU, the faster kept (int8 on a tie). With a single candidate
 * nothing is timed. The choice is logged and carried on the model (`selection`) to `status`.
 */
export async function chooseAutoModel(fallback: ResolvedModel, input: AutoChoiceInput): Promise<ResolvedModel> {
  const all = autoCandidates(input.assetsDir);
  const excluded: ModelSelection['excluded'] = [];
  const eligible = all.filter((model) => {
    const shortfall = agreementShortfall(model, input.minAgreement);
    if (shortfall) excluded.push({ model: model.manifest.id, reason: shortfall });
    return shortfall === undefined;
  });
  if (eligible.length === 0) {
    input.log.warn({ excluded }, 'model "auto": no candidate reaches model.autoMinAgreement: running the first one present');
    return fallback;
  }
  if (eligible.length === 1) {
    if (excluded.length === 0) return eligible[0]!;
    const only = eligible[0]!.manifest.id;
    const reason = `${only}, the only candidate: ${excluded.map((entry) => `${entry.model} left out, ${entry.reason}`).join('; ')}`;
    input.log.warn({ chosen: only, excluded }, `model "auto": ${reason}`);
    return { ...eligible[0]!, selection: { chosen: only, reason, timings: [], excluded, cpu: describeCpuInt8() } };
  }
  const configs = runConfigs(input.cores ?? os.availableParallelism(), { threads: input.settings.intraOpThreads, sessions: input.settings.sessions });
  let timed: TimedCandidate[];
  try {
    timed = await (input.time ?? ((models, candidates) => timeModels(models, { ...input.settings, intraOpThreads: 1, sessions: 1 }, candidates)))(
      eligible,
      configs,
    );
  } catch (error) {
    input.log.warn({ err: errorMessage(error) }, 'model "auto": timing the candidates failed: running the first one present');
    return eligible[0]!;
  }
  const decision = decideModel(timed);
  const chosen = eligible.find((model) => model.manifest.id === decision.chosen)!;
  const selection: ModelSelection = {
    chosen: decision.chosen,
    run: decision.run,
    reason: decision.reason,
    timings: timed.flatMap((candidate) => candidate.timings.map((timing) => ({ model: candidate.id, ...timing }))),
    excluded,
    cpu: describeCpuInt8(),
  };
  input.log.info(
    { chosen: selection.chosen, run: selection.run, timings: selection.timings, excluded, cpu: selection.cpu },
    `model chosen by measurement: ${selection.reason}`,
  );
  return { ...chosen, selection };
}
