import type { Logger } from '../log/logger.js';

/** What the cap needs of the outbox. */
export interface CappedOutbox {
  /** Drops the oldest rows beyond `max`, counts them (counter outbox_dropped) and returns how many. */
  enforceCap(max: number): number;
}

export interface OutboxCapDeps {
  outbox: () => CappedOutbox;
  /** storage.outboxMaxMessages. */
  max: number;
  /** Reports an overflow (an `outbox-overflow` event); called at most once per reportEveryMs. */
  report: (dropped: number, max: number) => void;
  reportEveryMs?: number;
  now?: () => number;
  log: Logger;
}

/**
 * The outbox's size policy, beside the outbox: after a commit that added messages, the oldest
 * beyond `storage.outboxMaxMessages` are dropped (a broker away for weeks must not fill the
 * disk), counted, and reported at most once a minute with the count since the last report, so
 * a long outage gives one event a minute, not one per flush.
 */
export class OutboxCapPolicy {
  private dropped = 0;
  private reportedAt = Number.NEGATIVE_INFINITY;
  private readonly reportEveryMs: number;
  private readonly now: () => number;

  constructor(private readonly deps: OutboxCapDeps) {
    this.reportEveryMs = deps.reportEveryMs ?? 60_000;
    this.now = deps.now ?? Date.now;
  }

  /** After a commit: enforces the cap and reports what was dropped when a report is due. */
  afterCommit(): void {
    this.dropped += this.deps.outbox().enforceCap(this.deps.max);
    const now = this.now();
    if (this.dropped === 0 || now - this.reportedAt < this.reportEveryMs) return;
    this.deps.log.warn({ dropped: this.dropped, cap: this.deps.max }, 'outbox full: oldest messages dropped');
    this.deps.report(this.dropped, this.deps.max);
    this.dropped = 0;
    this.reportedAt = now;
  }
}
