import { z } from 'zod';
import { type CommandHandler, defineCommand } from '../mqtt/commands.js';
import type { DriftService } from './drift-service.js';

/**
 * `drift-reference-reset`: after a deliberate change (a camera moved, a new lens), the old
 * reference would report drift for ever; forgetting it makes the agent capture a new one.
 */
export function driftReferenceResetCommandHandler(drift: DriftService): CommandHandler {
  return defineCommand({
    description:
      "Forgets the drift reference of one camera (or of every camera) for the active model; a new one is captured over the next referenceSeconds. The same as 'cctv-agent monitor reference reset'.",
    args: z.strictObject({ cameraId: z.string().min(1).optional().describe('Only this camera; every camera when absent.') }).prefault({}),
    result: z.strictObject({ reset: z.array(z.string()).describe('The cameras whose reference will be captured again.') }),
    run: async (args) => ({ reset: drift.resetReference(args.cameraId) }),
  });
}
