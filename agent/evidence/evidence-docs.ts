import type { CommandHandler } from '../mqtt/commands.js';
import { evidenceGetCommandHandler, evidenceListCommandHandler, type EvidenceSource } from './evidence-commands.js';

/** The evidence commands for docs/mqtt.md (scripts/gen-docs.mjs, test/docs); nothing here runs. */
export function evidenceCommandsForDocs(maxChunkBytes = 65_536): Record<string, CommandHandler> {
  const unused = {} as EvidenceSource;
  return {
    'evidence-list': evidenceListCommandHandler(unused),
    'evidence-get': evidenceGetCommandHandler(unused, maxChunkBytes),
  };
}
