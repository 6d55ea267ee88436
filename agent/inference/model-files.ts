import fs from 'node:fs';
import path from 'node:path';
import { AgentError, errorMessage } from '../errors.js';
import { defaultAssetsDir, manifestsDir } from '../paths.js';
import { manifestSchema, type ModelManifest } from './manifest.js';
import type { RunConfig, ThreadTiming } from './thread-choice.js';

/** A manifest with its files located and its labels read: everything needed to load the model. */
export interface ResolvedModel {
  manifest: ModelManifest;
  manifestPath: string;
  modelPath: string;
  labels: string[];
  /** Set when model.manifest "auto" chose this model by measurement (model-choice.ts). */
  selection?: ModelSelection;
}

/** Why "auto" runs the model it runs; shown by `cctv-agent status`. */
export interface ModelSelection {
  chosen: string;
  /** The threads and sessions it was fastest with; undefined when nothing was timed. */
  run?: RunConfig;
  reason: string;
  /** Median ms per run of each candidate at each thread count tried. */
  timings: Array<{ model: string } & ThreadTiming>;
  /** Candidates left out before timing, and why. */
  excluded: Array<{ model: string; reason: string }>;
  cpu: string;
}

/** "auto": the catalogued int8 model, else one the asset fetch derived on this machine, else float. */
export const DEFAULT_DETECTOR_MANIFESTS = ['yolox-nano-int8.json', 'yolox-nano-int8-local.json', 'yolox-nano.json'];

/**
 * Manifests that a derivation on this machine writes beside its model in the assets directory
 * (with the score threshold calibrated on this CPU); they replace the shipped template.
 */
const DERIVED_MANIFESTS: ReadonlySet<string> = new Set(['yolox-nano-int8-local.json']);

function defaultManifestPath(name: string, assetsDir: string): string {
  const derived = path.join(assetsDir, name);
  return DERIVED_MANIFESTS.has(name) && fs.existsSync(derived) ? derived : path.join(manifestsDir(), name);
}

/**
 * A file a manifest names: absolute, or beside the manifest, or in the assets directory, or
 * beside the shipped manifests (so a copy of a shipped manifest still finds the shipped golden
 * samples its relative paths name).
 */
export function locateManifestFile(file: string, manifestPath: string, assetsDir: string): string | undefined {
  if (path.isAbsolute(file)) return fs.existsSync(file) ? file : undefined;
  return [path.join(path.dirname(manifestPath), file), path.join(assetsDir, file), path.join(manifestsDir(), file)].find((candidate) =>
    fs.existsSync(candidate),
  );
}
const locate = locateManifestFile;

export function readManifest(manifestPath: string): ModelManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  } catch (error) {
    throw new AgentError('MODEL_MANIFEST_INVALID', `model manifest ${manifestPath} cannot be read as JSON: ${errorMessage(error)}`, { cause: error });
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw new AgentError('MODEL_MANIFEST_INVALID', `model manifest ${manifestPath}: ${first.path.join('.') || '(top level)'}: ${first.message}`);
  }
  return parsed.data;
}

function readLabels(manifest: ModelManifest, manifestPath: string, assetsDir: string): string[] {
  if (Array.isArray(manifest.labels)) return manifest.labels;
  const file = locate(manifest.labels.file, manifestPath, assetsDir);
  if (!file)
    throw new AgentError(
      'MODEL_FILE_MISSING',
      `labels file ${manifest.labels.file} of model ${manifest.id} not found next to ${manifestPath} or in ${assetsDir}`,
    );
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

export function resolveModel(manifestPath: string, assetsDir: string = defaultAssetsDir()): ResolvedModel {
  const manifest = readManifest(manifestPath);
  const modelPath = locate(manifest.file, manifestPath, assetsDir);
  if (!modelPath)
    throw new AgentError('MODEL_FILE_MISSING', `model file ${manifest.file} of ${manifest.id} not found next to ${manifestPath} or in ${assetsDir}`);
  return { manifest, manifestPath, modelPath, labels: readLabels(manifest, manifestPath, assetsDir) };
}

/**
 * "auto" is the best detector present: YOLOX-nano int8, else its float original. Errors name
 * the config key, since a missing model is a configuration problem the user must fix.
 */
export function resolveConfiguredModel(setting: string, assetsDir: string = defaultAssetsDir()): ResolvedModel {
  if (setting !== 'auto') {
    if (!fs.existsSync(setting)) throw new AgentError('MODEL_FILE_MISSING', `model.manifest: ${setting} does not exist`);
    try {
      return resolveModel(setting, assetsDir);
    } catch (error) {
      if (error instanceof AgentError) throw new AgentError(error.code, `model.manifest: ${error.message}`, { cause: error });
      throw error;
    }
  }
  for (const name of DEFAULT_DETECTOR_MANIFESTS) {
    const manifestPath = defaultManifestPath(name, assetsDir);
    const manifest = readManifest(manifestPath);
    if (locate(manifest.file, manifestPath, assetsDir)) return resolveModel(manifestPath, assetsDir);
  }
  throw new AgentError('MODEL_FILE_MISSING', `model.manifest: "auto" found neither yolox-nano-int8.onnx nor yolox-nano.onnx in ${assetsDir}`);
}

/**
 * What "auto" chooses between: the first int8 detector present (catalogued, else derived here)
 * and the float original, when present. resolveConfiguredModel's pick is the first of them.
 */
export function autoCandidates(assetsDir: string = defaultAssetsDir()): ResolvedModel[] {
  const present = DEFAULT_DETECTOR_MANIFESTS.map((name) => defaultManifestPath(name, assetsDir)).filter((manifestPath) =>
    locate(readManifest(manifestPath).file, manifestPath, assetsDir),
  );
  const int8 = present.find((manifestPath) => !manifestPath.endsWith(`${path.sep}yolox-nano.json`));
  const float = present.find((manifestPath) => manifestPath.endsWith(`${path.sep}yolox-nano.json`));
  return [int8, float].filter((manifestPath) => manifestPath !== undefined).map((manifestPath) => resolveModel(manifestPath, assetsDir));
}

/**
 * The manifest with this id among the shipped ones (models/manifests) and those written on this
 * machine in the assets directory (a derived model's), the latter first. Undefined when none.
 */
export function findManifestById(id: string, assetsDir: string = defaultAssetsDir()): string | undefined {
  for (const dir of [assetsDir, manifestsDir()]) {
    let names: string[];
    try {
      names = fs.readdirSync(dir).filter((name) => name.endsWith('.json') && !name.endsWith('.provenance.json') && !name.endsWith('.report.json'));
    } catch {
      continue; // no such directory: nothing installed there
    }
    for (const name of names.sort()) {
      const file = path.join(dir, name);
      try {
        if (readManifest(file).id === id) return file;
      } catch (error) {
        if (!(error instanceof AgentError)) throw error; // a JSON file that is not a manifest: not this model
      }
    }
  }
  return undefined;
}
