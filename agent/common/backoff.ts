/**
 * The one retry-delay formula of the agent (camera restarts, broker reconnects, model
 * downloads): exponential from `initialMs`, doubling per failed attempt, capped at `maxMs`, with
 * jitter over the upper half: the delay lies in [ceiling/2, ceiling]. The jitter keeps a fleet
 * that failed at the same moment (a broker restart, a DNS outage) from retrying in lockstep, also
 * once every device sits at the cap. `floorMs` keeps the delay from going under a minimum.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random, floorMs = 0): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(Math.max(floorMs, ceiling / 2 + (ceiling / 2) * random()));
}

/**
 * backoffDelay with its attempt count. The count resets only after a success that lasted
 * `stableMs`: a peer that accepts and drops us at once (two clients with one MQTT client id, an
 * ACL kick) must not turn into retries at the initial rate.
 */
export class RetryBackoff {
  private failures = 0;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly stableMs: number,
    private readonly random: () => number = Math.random,
    private readonly floorMs = 0,
  ) {}

  /** Attempts that failed (or successes that did not last) since the last stable one. */
  get attempt(): number {
    return this.failures;
  }

  /** The delay before the next attempt, counting the one that just failed. */
  next(): number {
    return backoffDelay(this.failures++, this.initialMs, this.maxMs, this.random, this.floorMs);
  }

  /** A success ended after `upMs`: a stable one starts the sequence again. */
  succeededFor(upMs: number): void {
    if (upMs >= this.stableMs) this.failures = 0;
  }

  reset(): void {
    this.failures = 0;
  }
}
