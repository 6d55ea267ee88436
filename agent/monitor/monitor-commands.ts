import { z } from 'zod';
import { AgentError } from '../errors.js';
import { type CommandHandler, defineCommand } from '../mqtt/commands.js';
import { feedbackArgsSchema, feedbackResultSchema } from './feedback-schema.js';
import type { MonitorService } from './monitor-service.js';
import { retrainStates } from './quality-schema.js';

/** What the commands answer about a retrain request. */
const requestSummarySchema = z.strictObject({
  requestId: z.string(),
  state: z.enum(retrainStates),
  cameraId: z.string(),
  model: z.strictObject({ id: z.string(), version: z.string() }),
  trigger: z.string(),
  reason: z.string(),
  raisedAt: z.string(),
  stateAt: z.string(),
});

const summary = (request: ReturnType<MonitorService['acknowledge']> & object) => ({
  requestId: request.requestId,
  state: request.state,
  cameraId: request.cameraId,
  model: { id: request.modelId, version: request.modelVersion },
  trigger: request.trigger,
  reason: request.reason,
  raisedAt: new Date(request.raisedAt).toISOString(),
  stateAt: new Date(request.stateAt).toISOString(),
});

/**
 * `feedback` on the device topic: every item must name a result this device holds, or the batch
 * is refused with the item's error code and nothing is stored. On the fleet topic, items about
 * other devices' results are skipped (`not-mine`).
 */
export function feedbackCommandHandler(monitor: MonitorService, maxItems: number, scope: 'device' | 'fleet'): CommandHandler {
  return defineCommand({
    description:
      scope === 'device'
        ? "Ground truth for this device's results: per detection correct, wrong-type (with trueType) or false-positive; a missed vehicle with its type and box. Idempotent by item id; all items or none."
        : 'Ground truth sent to every device at once: each stores the items about its own results and skips the others (not-mine).',
    args: feedbackArgsSchema(maxItems),
    result: feedbackResultSchema,
    run: async (args) => {
      const {
        touched: _touched,
        disputed: _disputed,
        ...result
      } = monitor.acceptFeedback(args.items, scope === 'device' ? 'mqtt' : 'fleet', scope === 'fleet');
      return result;
    },
  });
}

/** `retrain`: raises a retrain request by hand for a camera's active model (one pending at a time). */
export function retrainCommandHandler(monitor: MonitorService): CommandHandler {
  return defineCommand({
    description:
      "Raises a retrain request by hand for a camera's active model, with a reason; a request already pending for it is returned instead of a second one.",
    args: z.strictObject({
      cameraId: z.string().min(1).max(64),
      reason: z.string().min(1).max(500).describe('Why: goes into the request and the audit trail.'),
      by: z.string().min(1).max(64).default('operator').describe('Who asks (audit trail).'),
    }),
    result: z.strictObject({ alreadyPending: z.boolean(), request: requestSummarySchema }),
    run: async (args) => {
      try {
        const { request, alreadyPending } = monitor.requestRetrain(args.cameraId, args.reason, `mqtt:${args.by}`);
        return { alreadyPending, request: summary(request) };
      } catch (error) {
        throw new AgentError('COMMAND_FAILED', error instanceof Error ? error.message : String(error));
      }
    },
  });
}

/** `retrain-ack`: the training pipeline took the request; it is no longer pending. */
export function retrainAckCommandHandler(monitor: MonitorService): CommandHandler {
  return defineCommand({
    description: 'Acknowledges a retrain request: it stops being pending, so the next trigger may raise a new one.',
    args: z.strictObject({ requestId: z.string().min(1).max(64), by: z.string().min(1).max(64).default('pipeline') }),
    result: requestSummarySchema,
    run: async (args) => {
      const request = monitor.acknowledge(args.requestId, `mqtt:${args.by}`);
      if (!request) throw new AgentError('RETRAIN_NOT_FOUND', `no retrain request "${args.requestId}" on this device`);
      return summary(request);
    },
  });
}
