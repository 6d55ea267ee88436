import { AgentError, errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Health, Service } from './service.js';

export interface StopReport {
  failed: string[];
}

/**
 * Starts services in the given order, checking the abort signal between steps, and stops
 * the started ones in reverse. A failure to stop one service does not keep the others
 * from stopping; it is reported so the process can exit non-zero.
 */
export class ServiceRunner {
  private readonly started: Service[] = [];

  constructor(
    private readonly services: readonly Service[],
    private readonly log: Logger,
  ) {}

  async start(signal: AbortSignal): Promise<void> {
    for (const service of this.services) {
      if (signal.aborted) throw new AgentError('STARTUP_ABORTED', `startup aborted before ${service.name}`);
      this.log.debug({ service: service.name }, 'starting');
      // Pushed before start resolves: a half-started service still gets its stop().
      this.started.push(service);
      try {
        await service.start(signal);
      } catch (error) {
        if (signal.aborted) throw new AgentError('STARTUP_ABORTED', `startup aborted during ${service.name}`, { cause: error });
        throw error instanceof AgentError
          ? error
          : new AgentError('STARTUP_FAILED', `${service.name} failed to start: ${errorMessage(error)}`, { cause: error });
      }
      this.log.info({ service: service.name }, 'started');
    }
  }

  async stop(): Promise<StopReport> {
    const failed: string[] = [];
    while (this.started.length > 0) {
      const service = this.started.pop()!;
      try {
        await service.stop();
        this.log.debug({ service: service.name }, 'stopped');
      } catch (error) {
        failed.push(service.name);
        this.log.error({ service: service.name, err: error }, 'failed to stop');
      }
    }
    return { failed };
  }

  health(): Record<string, Health> {
    return Object.fromEntries(this.services.map((service) => [service.name, service.health()]));
  }
}
