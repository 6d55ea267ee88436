import fs from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../errors.js';
import { type ResolvedModel, resolveModel } from '../inference/model-files.js';
import type { Logger } from '../log/logger.js';
import { openDatabase, schemaVersion } from '../storage/database.js';
import { MANIFEST_NAME } from './bundle-files.js';

/**
 * The model to start with: the registry's active version when an update made one active
 * (it survives restarts), else the config's. Read before the pipeline is built, so the cameras
 * start with the right input geometry and no frame ever meets the wrong model. Anything odd (no
 * database yet, an older schema, a missing directory) falls back to the config's model, logged.
 */
export function bootModel(databaseFile: string, configModel: ResolvedModel, log: Logger): ResolvedModel {
  if (!fs.existsSync(databaseFile)) return configModel;
  let row: { model_id: string; version: string; dir: string | null } | undefined;
  try {
    const db = openDatabase(databaseFile, { readonly: true });
    try {
      if (schemaVersion(db) < 4) return configModel;
      row = db
        .prepare<[], { model_id: string; version: string; dir: string | null }>(
          "SELECT model_id, version, dir FROM model_versions WHERE state = 'active' LIMIT 1",
        )
        .get();
    } finally {
      db.close();
    }
  } catch (error) {
    log.warn({ err: errorMessage(error) }, 'model registry unreadable at start: using the configured model');
    return configModel;
  }
  if (!row || row.dir === null) return configModel;
  if (row.model_id === configModel.manifest.id && row.version === configModel.manifest.version) return configModel;
  try {
    const resolved = resolveModel(path.join(row.dir, MANIFEST_NAME), row.dir);
    log.info({ model: `${row.model_id}@${row.version}`, dir: row.dir }, 'starting with the model version the registry has active');
    return resolved;
  } catch (error) {
    log.error(
      { err: errorMessage(error), model: `${row.model_id}@${row.version}` },
      'the active model version cannot be loaded from the registry: using the configured model',
    );
    return configModel;
  }
}
