import fs from 'node:fs';
import path from 'node:path';
import { defaultAssetsDir, packageRoot } from '../paths.js';
import { z } from 'zod';
import { formatIssue } from '../config/issues.js';
import { AgentError, errorMessage, systemErrorCode } from '../errors.js';

/**
 * The asset catalog (models/catalog.json): every model, label file, clip and image the agent,
 * its tests and its demo use, with where each comes from, its sha256 and its licence.
 * The files themselves are never committed; `cctv-agent assets fetch` brings them.
 */

export const ASSET_KINDS = ['model', 'labels', 'video', 'image'] as const;
export type AssetKind = (typeof ASSET_KINDS)[number];

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

// A bare file name: assets land flat in the assets dir, so a slash or ".." would escape it.
const fileNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be a plain file name (letters, digits, ".", "_", "-"; no directories)');

// Relative and without "..", so that a catalog entry cannot read outside the mirror directory.
const mirrorPathSchema = z
  .string()
  .min(1)
  .refine((value) => !path.isAbsolute(value) && !value.split(/[\\/]/).includes('..'), 'must be a relative path inside the mirror, without ".."');

export const assetSchema = z.strictObject({
  name: fileNameSchema,
  kind: z.enum(ASSET_KINDS),
  sha256: sha256Schema,
  size: z.number().int().positive(),
  licence: z.string().min(1),
  upstream: z.url({ protocol: /^https$/, error: 'must be an https URL' }).nullable(),
  obtain: z.string().min(1, 'must say how to get the file'),
  mirrorPath: mirrorPathSchema,
  required: z.boolean(),
  notes: z.string(),
  derivedFrom: z
    .strictObject({
      asset: fileNameSchema.describe('The catalogued asset it is made from (one with an upstream or a mirror copy).'),
      ffmpegArgs: z.array(z.string()).min(3).describe('The recipe: ffmpeg arguments with "{input}" and "{output}" placeholders.'),
    })
    .optional()
    .describe("Made on this machine when no mirror has it: verified through its source's sha256 and a provenance file (docs/assets.md)."),
});

export const catalogSchema = z
  .strictObject({
    schemaVersion: z.literal(1),
    mirror: z.strictObject({
      layout: z.string().min(1),
      description: z.string().min(1),
    }),
    assets: z.array(assetSchema).min(1),
  })
  .superRefine((catalog, context) => {
    const seen = new Set<string>();
    catalog.assets.forEach((asset, index) => {
      if (seen.has(asset.name)) {
        context.addIssue({ code: 'custom', path: ['assets', index, 'name'], message: `duplicate asset name "${asset.name}"` });
      }
      seen.add(asset.name);
      const from = asset.derivedFrom;
      if (from === undefined) return;
      const source = catalog.assets.find((entry) => entry.name === from.asset);
      if (!source || source.derivedFrom !== undefined) {
        context.addIssue({
          code: 'custom',
          path: ['assets', index, 'derivedFrom', 'asset'],
          message: `must name a catalogued asset that is not itself derived (got "${from.asset}")`,
        });
      }
      if (!from.ffmpegArgs.includes('{input}') || !from.ffmpegArgs.includes('{output}')) {
        context.addIssue({
          code: 'custom',
          path: ['assets', index, 'derivedFrom', 'ffmpegArgs'],
          message: 'must contain the "{input}" and "{output}" placeholders',
        });
      }
    });
  });

export type AssetEntry = z.infer<typeof assetSchema>;
export type Catalog = z.infer<typeof catalogSchema>;

export function defaultCatalogFile(): string {
  return path.join(packageRoot(), 'models', 'catalog.json');
}

/** Where fetched assets live: `override` (config model.assetsDir, --dest) or <package root>/models/assets (git-ignored). */
export function assetsDir(override?: string): string {
  return override !== undefined && override !== '' ? path.resolve(override) : defaultAssetsDir();
}

/** Validates a parsed catalog; `source` names the file in the error. */
export function parseCatalog(value: unknown, source = 'catalog'): Catalog {
  const result = catalogSchema.safeParse(value);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => formatIssue(issue, catalogSchema));
    // The catalog ships with the package, so a broken one is a packaging bug, not a user setting.
    throw new AgentError('INTERNAL', `${source} is not a valid asset catalog: ${problems.join('; ')}`);
  }
  return result.data;
}

export function loadCatalog(file: string = defaultCatalogFile()): Catalog {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw new AgentError('INTERNAL', `asset catalog ${file} cannot be read: ${errorMessage(error)}`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new AgentError('INTERNAL', `asset catalog ${file} is not valid JSON: ${errorMessage(error)}`, { cause: error });
  }
  return parseCatalog(value, file);
}

export function findAsset(catalog: Catalog, name: string): AssetEntry | undefined {
  return catalog.assets.find((asset) => asset.name === name);
}

/**
 * The local path of a fetched asset, or undefined when it is not there. Only checks that the
 * file exists: `cctv-agent assets fetch` is what verifies sha256, and hashing a model on every
 * lookup would slow start-up for nothing.
 */
export function resolveAsset(name: string, dir: string = assetsDir()): string | undefined {
  if (!fileNameSchema.safeParse(name).success) return undefined;
  const file = path.join(dir, name);
  try {
    return fs.statSync(file).isFile() ? file : undefined;
  } catch (error) {
    const code = systemErrorCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new AgentError('ASSET_UNAVAILABLE', `asset ${name} at ${file} cannot be read: ${errorMessage(error)}`, { cause: error });
  }
}
