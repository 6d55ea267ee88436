/**
 * Reconnect delays for the broker link: a base doubling from `initialMs` per failed attempt,
 * jittered to [base/2, base*1.5] and kept within [initialMs, maxMs]. The jitter is there so a
 * fleet that lost its broker at the same moment does not come back in lockstep (a thundering
 * herd on a clustered broker), also once every device sits at the cap.
 *
 * The attempt count resets only after a connection that stayed up for `stableMs`: a broker
 * that accepts and drops us at once (two agents with the same client id taking the session
 * from each other, a broker-side ACL kick) must not turn into a reconnect storm at the
 * initial rate.
 */
export class ReconnectBackoff {
  private failures = 0;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
    private readonly stableMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** Attempts that failed (or connections that did not last) since the last stable one. */
  get attempt(): number {
    return this.failures;
  }

  /** The delay before the next attempt, counting the one that just failed. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return Math.round(Math.min(this.maxMs, Math.max(this.initialMs, base * (0.5 + this.random()))));
  }

  /** A connection ended after `upMs`: a stable one starts the sequence again. */
  disconnectedAfter(upMs: number): void {
    if (upMs >= this.stableMs) this.failures = 0;
  }
}
