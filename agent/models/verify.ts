import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type crypto from 'node:crypto';
import { sha256File } from '../common/checksum.js';
import { AgentError, errorMessage } from '../errors.js';
import { type ModelManifest, manifestSchema } from '../inference/manifest.js';
import type { ResolvedModel } from '../inference/model-files.js';
import { MANIFEST_NAME, SIGNATURE_NAME, type BundleSignature, signatureSchema } from './bundle-files.js';
import { canonicalJson } from './canonical.js';
import { verifyBytes } from './keys.js';
import { compareVersions } from './version-order.js';

export type BundleManifest = ModelManifest & { bundle: NonNullable<ModelManifest['bundle']> };

/** What the device trusts: keys by id, and whether an unsigned bundle may pass (a lab only). */
export interface TrustPolicy {
  keys: ReadonlyMap<string, crypto.KeyObject>;
  allowUnsigned: boolean;
}

/** What a candidate is compared with: the running model, and the newest version this device has run of that id. */
export interface CompatibilityContext {
  running: Pick<ResolvedModel, 'manifest' | 'labels'> | undefined;
  highestVersion: string | undefined;
  rollback: boolean;
}

export interface VerifiedBundle {
  manifest: BundleManifest;
  /** The key that signed it; null for an unsigned bundle admitted by allowUnsigned. */
  keyId: string | null;
  labels: string[];
}

export function readBundleManifest(dir: string): BundleManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_NAME), 'utf8'));
  } catch (error) {
    throw new AgentError('MODEL_BUNDLE_INVALID', `${MANIFEST_NAME} cannot be read as JSON: ${errorMessage(error)}`, { cause: error });
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw new AgentError('MODEL_BUNDLE_INVALID', `${MANIFEST_NAME}: ${first.path.join('.') || '(top level)'}: ${first.message}`);
  }
  if (!parsed.data.bundle) throw new AgentError('MODEL_BUNDLE_INVALID', `${MANIFEST_NAME} has no "bundle" section: it is a plain manifest, not a bundle's`);
  return parsed.data as BundleManifest;
}

/** The bytes the signature covers: the canonical form of the parsed manifest (defaults not filled in). */
export function signedBytes(dir: string): Buffer {
  const raw = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_NAME), 'utf8')) as unknown;
  return Buffer.from(canonicalJson(raw), 'utf8');
}

/** Every file the manifest refers to must be one the bundle lists (and so hashes and signs). */
function referencedFiles(manifest: ModelManifest): string[] {
  return [
    manifest.file,
    ...(Array.isArray(manifest.labels) ? [] : [manifest.labels.file]),
    ...[manifest.referenceStatistics, manifest.calibration, manifest.golden].flatMap((extra) => (extra ? [extra.file] : [])),
  ];
}

/** Sizes, then hashes, of every listed file; nothing unlisted may sit beside them. */
export async function checkFiles(dir: string, manifest: BundleManifest): Promise<void> {
  const listed = new Set(manifest.bundle.files.map((file) => file.path));
  for (const name of referencedFiles(manifest))
    if (!listed.has(name)) throw new AgentError('MODEL_BUNDLE_INVALID', `the manifest refers to ${name}, which the bundle's file list does not name`);
  for (const name of fs.readdirSync(dir))
    if (name !== MANIFEST_NAME && name !== SIGNATURE_NAME && !listed.has(name))
      throw new AgentError('MODEL_BUNDLE_INVALID', `the bundle holds ${name}, which its manifest does not list`);
  for (const file of manifest.bundle.files) {
    const full = path.join(dir, file.path);
    const size = fs.existsSync(full) ? fs.statSync(full).size : -1;
    if (size < 0) throw new AgentError('MODEL_BUNDLE_TRUNCATED', `${file.path} is listed but missing from the bundle`);
    if (size !== file.size) throw new AgentError('MODEL_BUNDLE_TRUNCATED', `${file.path} is ${size} bytes, the manifest says ${file.size}`);
    const sha = await sha256File(full);
    if (sha !== file.sha256) throw new AgentError('MODEL_BUNDLE_HASH_MISMATCH', `${file.path} has sha256 ${sha}, the manifest says ${file.sha256}`);
  }
}

export function readSignature(dir: string): BundleSignature | undefined {
  const file = path.join(dir, SIGNATURE_NAME);
  if (!fs.existsSync(file)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new AgentError('MODEL_BUNDLE_SIGNATURE_INVALID', `${SIGNATURE_NAME} is not JSON: ${errorMessage(error)}`, { cause: error });
  }
  const parsed = signatureSchema.safeParse(raw);
  if (!parsed.success) throw new AgentError('MODEL_BUNDLE_SIGNATURE_INVALID', `${SIGNATURE_NAME} is malformed: ${parsed.error.issues[0]!.message}`);
  return parsed.data;
}

/** The signature against the trusted keys; returns the signing key id, or null when unsigned and allowed. */
export function checkSignature(dir: string, policy: TrustPolicy): string | null {
  const signature = readSignature(dir);
  if (!signature) {
    if (policy.allowUnsigned) return null;
    throw new AgentError('MODEL_BUNDLE_UNSIGNED', 'the bundle carries no signature and modelUpdates.allowUnsigned is false');
  }
  const key = policy.keys.get(signature.keyId);
  if (!key) throw new AgentError('MODEL_BUNDLE_KEY_UNKNOWN', `the bundle is signed by key ${signature.keyId}, which modelUpdates.trustedKeys does not list`);
  if (!verifyBytes(signedBytes(dir), signature.signature, key))
    throw new AgentError('MODEL_BUNDLE_SIGNATURE_INVALID', `the signature by key ${signature.keyId} does not match the manifest`);
  return signature.keyId;
}

function readLabels(dir: string, manifest: ModelManifest): string[] {
  if (Array.isArray(manifest.labels)) return manifest.labels;
  return fs
    .readFileSync(path.join(dir, manifest.labels.file), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

/** The candidate must fit the camera pipeline the running model feeds, and move forward. */
export function checkCompatibility(manifest: ModelManifest, labels: string[], context: CompatibilityContext): void {
  const running = context.running;
  if (running) {
    const { input: a } = manifest;
    const { input: b } = running.manifest;
    const shape = (input: typeof a) => ({
      name: input.name,
      layout: input.layout,
      dtype: input.dtype,
      width: input.width,
      height: input.height,
      task: manifest.task,
    });
    if (!isDeepStrictEqual(shape(a), { ...shape(b), task: running.manifest.task }))
      throw new AgentError(
        'MODEL_INPUT_INCOMPATIBLE',
        `${manifest.id}@${manifest.version} takes ${a.name} ${a.layout} ${a.dtype} ${a.width}x${a.height} (${manifest.task}); the running model takes ${b.name} ${b.layout} ${b.dtype} ${b.width}x${b.height} (${running.manifest.task})`,
      );
    if (labels.length !== running.labels.length)
      throw new AgentError(
        'MODEL_LABELS_INCOMPATIBLE',
        `${manifest.id}@${manifest.version} has ${labels.length} labels; the running model has ${running.labels.length}`,
      );
  }
  const known = new Set(labels);
  const missing = Object.keys(manifest.vehicleTypes).filter((label) => !known.has(label));
  if (missing.length > 0) throw new AgentError('MODEL_LABELS_INCOMPATIBLE', `vehicleTypes names labels the model lacks: ${missing.join(', ')}`);
  if (!context.rollback && context.highestVersion !== undefined && compareVersions(manifest.version, context.highestVersion) <= 0)
    throw new AgentError(
      'MODEL_DOWNGRADE',
      `${manifest.id}@${manifest.version} is not newer than ${context.highestVersion}, which this device already had: versions only move forward except by rollback`,
    );
}

/**
 * Everything checked before a candidate may run, cheapest refusal first: the manifest's form,
 * the signature (before hashing hundreds of megabytes for an untrusted sender), each file's size
 * and sha256, then fit with the camera pipeline and the version order.
 */
export async function verifyExtracted(dir: string, policy: TrustPolicy, context: CompatibilityContext): Promise<VerifiedBundle> {
  const manifest = readBundleManifest(dir);
  const keyId = checkSignature(dir, policy);
  await checkFiles(dir, manifest);
  const labels = readLabels(dir, manifest);
  checkCompatibility(manifest, labels, context);
  return { manifest, keyId, labels };
}
