import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { z } from 'zod';
import { AgentError, errorMessage } from '../errors.js';

/** The manifest inside a bundle, and the detached signature over its canonical form. */
export const MANIFEST_NAME = 'manifest.json';
export const SIGNATURE_NAME = 'manifest.sig';
/** More entries than this is not a model bundle (a manifest names at most 32 files). */
const MAX_ENTRIES = 34;
const PLAIN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export const signatureSchema = z.strictObject({
  format: z.literal(1),
  algorithm: z.literal('ed25519'),
  keyId: z.string().regex(/^[0-9a-f]{16}$/),
  signature: z.string().min(1).max(200).describe('base64 of the 64-byte ed25519 signature over the canonical manifest'),
});
export type BundleSignature = z.output<typeof signatureSchema>;

export interface BundleEntry {
  name: string;
  size: number;
}

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
const LINK_OR_DEVICE = new Set(['Link', 'SymbolicLink', 'CharacterDevice', 'BlockDevice', 'FIFO']);

/** Why an entry name or type is refused, or undefined when it is a plain file with a plain name. */
export function entryProblem(name: string, type: string): { code: 'MODEL_BUNDLE_UNSAFE_PATH' | 'MODEL_BUNDLE_INVALID'; why: string } | undefined {
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name) || name.startsWith('\\')) return { code: 'MODEL_BUNDLE_UNSAFE_PATH', why: 'an absolute path' };
  if (name.split(/[/\\]/).includes('..')) return { code: 'MODEL_BUNDLE_UNSAFE_PATH', why: 'a ".." path' };
  if (LINK_OR_DEVICE.has(type)) return { code: 'MODEL_BUNDLE_UNSAFE_PATH', why: `a ${type} entry` };
  if (!FILE_TYPES.has(type)) return { code: 'MODEL_BUNDLE_INVALID', why: `a ${type} entry (a bundle holds plain files only)` };
  if (!PLAIN_NAME.test(name)) return { code: 'MODEL_BUNDLE_INVALID', why: 'a name with a directory or odd characters' };
  return undefined;
}

/**
 * Lists a bundle without writing anything, refusing it (with a code) when it is larger than
 * `maxBytes`, is not a tar, or holds an entry that extraction could turn against the disk:
 * "..", an absolute path, a link, a device. Only then may `extractBundle` touch the disk.
 */
export async function inspectBundle(file: string, maxBytes: number): Promise<BundleEntry[]> {
  const size = fs.statSync(file).size;
  if (size > maxBytes) throw new AgentError('MODEL_BUNDLE_TOO_LARGE', `bundle ${path.basename(file)} is ${size} bytes, over the ${maxBytes}-byte limit`);
  const entries: BundleEntry[] = [];
  let refusal: AgentError | undefined;
  try {
    await tar.t({
      file,
      strict: true,
      onReadEntry: (entry) => {
        const problem = entryProblem(entry.path, entry.type);
        if (problem && !refusal) refusal = new AgentError(problem.code, `bundle entry "${entry.path}" is ${problem.why}: refused`);
        entries.push({ name: entry.path, size: entry.size ?? 0 });
        entry.resume();
      },
    });
  } catch (error) {
    throw new AgentError('MODEL_BUNDLE_INVALID', `${path.basename(file)} is not a readable tar: ${errorMessage(error)}`, { cause: error });
  }
  if (refusal) throw refusal;
  if (entries.length === 0 || entries.length > MAX_ENTRIES) throw new AgentError('MODEL_BUNDLE_INVALID', `bundle has ${entries.length} entries`);
  const names = new Set(entries.map((entry) => entry.name));
  if (names.size !== entries.length) throw new AgentError('MODEL_BUNDLE_INVALID', 'bundle holds the same name twice');
  if (!names.has(MANIFEST_NAME)) throw new AgentError('MODEL_BUNDLE_INVALID', `bundle has no ${MANIFEST_NAME}`);
  return entries;
}

/** Extracts an inspected bundle into an empty directory, only the plain files it listed. */
export async function extractBundle(file: string, dir: string, maxBytes: number): Promise<BundleEntry[]> {
  const entries = await inspectBundle(file, maxBytes);
  const allowed = new Set(entries.map((entry) => entry.name));
  fs.mkdirSync(dir, { recursive: true });
  try {
    await tar.x({
      file,
      cwd: dir,
      strict: true,
      preservePaths: false,
      filter: (name, entry) => allowed.has(name) && 'type' in entry && FILE_TYPES.has(entry.type),
    });
  } catch (error) {
    throw new AgentError('MODEL_BUNDLE_INVALID', `bundle ${path.basename(file)} could not be extracted: ${errorMessage(error)}`, { cause: error });
  }
  return entries;
}

/** Writes a bundle tar from files in `dir` (plain names), manifest first. */
export async function writeBundle(dir: string, names: string[], out: string): Promise<void> {
  const ordered = [
    MANIFEST_NAME,
    ...(names.includes(SIGNATURE_NAME) ? [SIGNATURE_NAME] : []),
    ...names.filter((n) => n !== MANIFEST_NAME && n !== SIGNATURE_NAME),
  ];
  const tmp = `${out}.tmp`;
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  await tar.c({ file: tmp, cwd: dir, portable: true, noDirRecurse: true }, ordered);
  fs.renameSync(tmp, out);
}
