/** Health as a subsystem reports it; `detail` is small and JSON-safe (no secrets). */
export interface Health {
  ok: boolean;
  state: string;
  detail?: Record<string, unknown>;
}

/**
 * Every subsystem is a small service. `start` resolves once the service is serving and
 * should give up promptly when `signal` aborts; `stop` releases everything and must be
 * safe to call after a failed or partial start.
 */
export interface Service {
  readonly name: string;
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
  health(): Health;
}
