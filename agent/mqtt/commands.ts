import type { z } from 'zod';
import { AgentError, errorMessage, type ErrorCode } from '../errors.js';
import type { Health, Service } from '../lifecycle/service.js';
import type { Logger } from '../log/logger.js';
import { commandEnvelopeSchema, REQUEST_ID_MAX, type CommandErrorCode, type CommandReply } from './command-schemas.js';
import type { IncomingMessage } from './mqtt-link.js';
import { commandName, isAllowedResponseTopic, type DeviceTopics } from './topics.js';

/**
 * One command: its arguments' schema (strict: an unknown field is an error), and what it does.
 * `result` and `description` only feed docs/mqtt.md.
 */
export interface CommandHandler<Args extends z.ZodType = z.ZodType> {
  description: string;
  args: Args;
  result?: z.ZodType;
  run(args: z.output<Args>): Promise<unknown>;
}

/** Keeps the link between a handler's schema and its run() argument when building it. */
export function defineCommand<Args extends z.ZodType>(handler: CommandHandler<Args>): CommandHandler {
  return handler as unknown as CommandHandler;
}

/** What the router needs from the broker link (MqttLink in the agent, a fake in unit tests). */
export interface CommandTransport {
  subscribe(filter: string, listener: (message: IncomingMessage) => void): void;
  reply(topic: string, payload: Buffer, correlationData?: Buffer): Promise<void>;
}

export interface CommandRouterDeps {
  topics: DeviceTopics;
  /** mqtt.commands.maxPayloadBytes: checked before the payload is even decoded. */
  maxPayloadBytes: number;
  log: Logger;
  /** Unset: the router answers through handle() only (tests, or commands disabled). */
  transport?: CommandTransport;
  handlerTimeoutMs?: number;
  now?: () => number;
}

const COMMAND_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const DEFAULT_HANDLER_TIMEOUT_MS = 10_000;
/** Handlers running at once, at most: a flood of requests gets "busy" replies, not a pile-up. */
const MAX_RUNNING = 16;
/** Rejections are logged at most once per this period (counts in between), never per message. */
const REJECTION_LOG_PERIOD_MS = 60_000;
const utf8 = new TextDecoder('utf-8', { fatal: true });

class CommandError {
  constructor(
    readonly code: CommandErrorCode,
    readonly message: string,
  ) {}
}

function describeIssues(issues: readonly z.core.$ZodIssue[], prefix: string): string {
  return issues
    .slice(0, 3)
    .map((issue) => {
      const at = [prefix, ...issue.path.map(String)].filter((part) => part !== '').join('.');
      if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => `unknown field "${at ? `${at}.` : ''}${key}"`).join(', ');
      return `${at || '(payload)'}: ${issue.message}`;
    })
    .join('; ');
}

/**
 * Answers commands on <prefix>/<deviceId>/cmd/<name>: every request gets exactly one reply,
 * `{ requestId, command, ok, code?, message?, result? }`, on <...>/cmd/<name>/reply or on the
 * request's MQTT 5 response topic (only one inside the device's namespace, see topics.ts).
 * Checks, in order: size (before decoding), retained (stale) request, UTF-8 JSON object, the
 * strict envelope, a known command, its strict arguments; then runs it with a time limit.
 * Handlers are registered at build time (agent/daemon.ts), before start().
 */
export class CommandRouter implements Service {
  readonly name = 'commands';
  private readonly handlers = new Map<string, CommandHandler>();
  private started = false;
  private running = 0;
  private received = 0;
  private answered = 0;
  private repliesLost = 0;
  private readonly rejected = new Map<ErrorCode, number>();
  private lastRejectionLogAt = -Infinity;
  private rejectedSinceLog = 0;

  constructor(private readonly deps: CommandRouterDeps) {}

  register(name: string, handler: CommandHandler): this {
    if (this.started) throw new Error(`command "${name}" registered after start: register handlers in agent/daemon.ts`);
    if (!COMMAND_NAME.test(name)) throw new Error(`command name "${name}" must match ${COMMAND_NAME.source}`);
    this.handlers.set(name, handler);
    return this;
  }

  /** The registered commands, by name (docs, and the COMMAND_UNKNOWN message). */
  get commands(): ReadonlyMap<string, CommandHandler> {
    return this.handlers;
  }

  async start(): Promise<void> {
    this.started = true;
    this.deps.transport?.subscribe(this.deps.topics.commandFilter, (message) => void this.receive(message));
  }

  async stop(): Promise<void> {
    this.started = false;
  }

  private async receive(message: IncomingMessage): Promise<void> {
    const name = commandName(this.deps.topics, message.topic);
    if (name === undefined || !this.started) return;
    const reply = await this.handle(name, message);
    const useResponseTopic = message.responseTopic !== undefined && isAllowedResponseTopic(this.deps.topics, message.responseTopic);
    const topic = useResponseTopic ? message.responseTopic! : this.deps.topics.commandReply(name);
    try {
      await this.deps.transport!.reply(topic, Buffer.from(JSON.stringify(reply)), message.correlationData);
    } catch {
      // Replies do not go through the outbox: with the link down the reply is lost (docs/mqtt.md).
      this.repliesLost++;
    }
  }

  /** Validates and runs one request; always resolves to exactly one reply, never throws. */
  async handle(name: string, message: Pick<IncomingMessage, 'payload' | 'retain'>): Promise<CommandReply> {
    this.received++;
    let requestId: string | null = null;
    try {
      const value = this.decode(message);
      const candidate = value['requestId'];
      if (typeof candidate === 'string' && candidate.length <= REQUEST_ID_MAX) requestId = candidate;
      const envelope = commandEnvelopeSchema.safeParse(value);
      if (!envelope.success) throw new CommandError('COMMAND_INVALID', describeIssues(envelope.error.issues, ''));
      const handler = this.handlers.get(name);
      if (!handler) {
        const known = [...this.handlers.keys()].sort().join(', ');
        throw new CommandError('COMMAND_UNKNOWN', `unknown command "${name.slice(0, 64)}"; known: ${known || 'none'}`);
      }
      const args = handler.args.safeParse(envelope.data.args ?? {});
      if (!args.success) throw new CommandError('COMMAND_INVALID', describeIssues(args.error.issues, 'args'));
      const result = await this.run(name, handler, args.data);
      // The reply is JSON: a result that cannot be serialised is the handler's failure.
      JSON.stringify(result);
      this.answered++;
      return { requestId, command: name, ok: true, result };
    } catch (error) {
      // A handler refuses with its own code (an AgentError); anything else is a failure of the command.
      const failure =
        error instanceof CommandError
          ? error
          : error instanceof AgentError
            ? new CommandError(error.code, error.message)
            : new CommandError('COMMAND_FAILED', errorMessage(error));
      this.countRejection(name, failure);
      this.answered++;
      return { requestId, command: name, ok: false, code: failure.code, message: failure.message };
    }
  }

  /** Size, staleness, UTF-8, JSON, object: the checks that need no schema. */
  private decode(message: Pick<IncomingMessage, 'payload' | 'retain'>): Record<string, unknown> {
    const { payload } = message;
    if (payload.length > this.deps.maxPayloadBytes) {
      throw new CommandError(
        'COMMAND_TOO_LARGE',
        `payload is ${payload.length} bytes; the limit is ${this.deps.maxPayloadBytes} (mqtt.commands.maxPayloadBytes)`,
      );
    }
    if (message.retain) throw new CommandError('COMMAND_INVALID', 'retained command not executed: publish commands with retain false');
    if (payload.length === 0) throw new CommandError('COMMAND_INVALID_JSON', 'empty payload: send a JSON object, at least {}');
    let text: string;
    try {
      text = utf8.decode(payload);
    } catch {
      throw new CommandError('COMMAND_INVALID_JSON', 'payload is not valid UTF-8');
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new CommandError('COMMAND_INVALID_JSON', `payload is not JSON: ${errorMessage(error)}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new CommandError(
        'COMMAND_INVALID_JSON',
        `payload must be a JSON object, not ${Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`}`,
      );
    }
    return value as Record<string, unknown>;
  }

  private async run(name: string, handler: CommandHandler, args: unknown): Promise<unknown> {
    if (this.running >= MAX_RUNNING) throw new CommandError('COMMAND_FAILED', `busy: ${MAX_RUNNING} commands are running; try again`);
    this.running++;
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.deps.handlerTimeoutMs ?? DEFAULT_HANDLER_TIMEOUT_MS;
    try {
      return await Promise.race([
        handler.run(args),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new CommandError('COMMAND_FAILED', `command "${name}" did not finish within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.running--;
    }
  }

  /** Counts every rejection; logs the first, then at most one summary per period. */
  private countRejection(name: string, failure: CommandError): void {
    this.rejected.set(failure.code, (this.rejected.get(failure.code) ?? 0) + 1);
    this.rejectedSinceLog++;
    const now = (this.deps.now ?? Date.now)();
    if (now - this.lastRejectionLogAt < REJECTION_LOG_PERIOD_MS) return;
    this.lastRejectionLogAt = now;
    this.deps.log.warn(
      {
        command: name.slice(0, 64),
        code: failure.code,
        err: failure.message.slice(0, 200),
        rejectedSinceLastLine: this.rejectedSinceLog,
        rejected: Object.fromEntries(this.rejected),
      },
      'command rejected (further rejections are counted in health and logged at most once a minute)',
    );
    this.rejectedSinceLog = 0;
  }

  health(): Health {
    return {
      ok: true,
      state: this.started ? 'listening' : 'stopped',
      detail: {
        commands: [...this.handlers.keys()],
        received: this.received,
        answered: this.answered,
        repliesLost: this.repliesLost,
        running: this.running,
        rejected: Object.fromEntries(this.rejected),
      },
    };
  }
}
