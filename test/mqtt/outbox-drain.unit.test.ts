import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { OutboxDrain, type Publisher } from '../../agent/mqtt/outbox-drain.js';
import type { OutboxMessage, OutboxReader } from '../../agent/storage/outbox.js';
import { captureLogger } from '../support/capture-log.js';

/** The outbox in memory: ids only grow, rows go when removed or expired. */
class MemoryOutbox implements OutboxReader {
  rows: OutboxMessage[] = [];
  expiredIds: number[] = [];
  peeks = 0;

  add(count: number, expiresAt: (id: number) => number | null = () => null): void {
    const start = (this.rows.at(-1)?.id ?? 0) + 1;
    for (let id = start; id < start + count; id++) {
      this.rows.push({ id, messageId: `m${id}`, topic: 't', payload: Buffer.from(String(id)), qos: 1, retain: false, expiresAt: expiresAt(id) });
    }
  }

  peek(afterId: number, limit: number): OutboxMessage[] {
    this.peeks++;
    return this.rows.filter((row) => row.id > afterId).slice(0, limit);
  }

  remove(ids: readonly number[]): void {
    const gone = new Set(ids);
    this.rows = this.rows.filter((row) => !gone.has(row.id));
  }

  dropExpired(ids: readonly number[]): void {
    this.expiredIds.push(...ids);
    this.remove(ids);
  }

  depth(): number {
    return this.rows.length;
  }
}

/** A broker that acknowledges each publish `ackMs` later (fake time), or refuses chosen ids once. */
function fakePublisher(ackMs: number, refuseOnce: Set<number> = new Set()): Publisher & { sent: number[]; outstanding: number; maxOutstanding: number } {
  const publisher = {
    connected: true,
    sent: [] as number[],
    outstanding: 0,
    maxOutstanding: 0,
    onConnect: () => undefined,
    publish(_topic: string, payload: Buffer): Promise<void> {
      const id = Number(payload.toString());
      publisher.sent.push(id);
      publisher.outstanding++;
      publisher.maxOutstanding = Math.max(publisher.maxOutstanding, publisher.outstanding);
      return new Promise<void>((resolve, reject) => {
        setTimeout(() => {
          publisher.outstanding--;
          if (refuseOnce.delete(id)) reject(Object.assign(new Error('no ack'), { code: 'ETIMEDOUT' }));
          else resolve();
        }, ackMs);
      });
    },
  };
  return publisher;
}

describe('the outbox drain, on fake time', () => {
  let drain: OutboxDrain | undefined;
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(async () => {
    const stopping = drain?.stop();
    await vi.runAllTimersAsync();
    await stopping;
    drain = undefined;
    vi.useRealTimers();
  });

  it('keeps at most maxInFlight messages unacknowledged, publishes in id order and deletes what was acknowledged', async () => {
    const outbox = new MemoryOutbox();
    outbox.add(1200);
    const publisher = fakePublisher(5);
    drain = new OutboxDrain({ outbox: () => outbox, publisher, batchSize: 100, maxInFlight: 300, log: captureLogger().log });
    await drain.start();
    await vi.advanceTimersByTimeAsync(500);
    expect(outbox.depth()).toBe(0);
    expect(publisher.sent).toEqual(Array.from({ length: 1200 }, (_, i) => i + 1));
    expect(publisher.maxOutstanding).toBeLessThanOrEqual(300);
    expect(publisher.maxOutstanding).toBeGreaterThan(100);
    expect(drain.health().detail).toMatchObject({ published: 1200, inFlight: 0, depth: 0 });
  });

  it('a refused publish keeps that row and everything after it; the next pass resends from it, in order', async () => {
    const outbox = new MemoryOutbox();
    outbox.add(400);
    const publisher = fakePublisher(5, new Set([150]));
    drain = new OutboxDrain({ outbox: () => outbox, publisher, batchSize: 100, maxInFlight: 200, log: captureLogger().log });
    await drain.start();
    await vi.advanceTimersByTimeAsync(50);
    // The first pass stopped at 150: rows before it are gone, 150 and after it wait.
    expect(outbox.rows[0]!.id).toBe(150);
    // The retry comes with the next idle tick (1 s), not in a spin.
    const sentBefore = publisher.sent.length;
    await vi.advanceTimersByTimeAsync(900);
    expect(publisher.sent.length).toBe(sentBefore);
    await vi.advanceTimersByTimeAsync(200);
    expect(outbox.depth()).toBe(0);
    const firstTimes = [...new Map(publisher.sent.map((id, index) => [id, index])).entries()].sort((a, b) => a[1] - b[1]).map(([id]) => id);
    expect(firstTimes).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    // Resent: only what was out when 150 failed (150 and the window behind it), never before it.
    expect(Math.min(...publisher.sent.filter((id, index) => publisher.sent.indexOf(id) !== index))).toBe(150);
  });

  it('drops rows past their expiry by the injected clock, counts them and never sends them', async () => {
    const outbox = new MemoryOutbox();
    const now = 1_000_000;
    outbox.add(10, (id) => (id % 2 === 0 ? now - 1 : now + 60_000));
    const publisher = fakePublisher(1);
    drain = new OutboxDrain({ outbox: () => outbox, publisher, batchSize: 4, log: captureLogger().log, now: () => now });
    await drain.start();
    await vi.advanceTimersByTimeAsync(50);
    expect(publisher.sent).toEqual([1, 3, 5, 7, 9]);
    expect(outbox.expiredIds).toEqual([2, 4, 6, 8, 10]);
    expect(drain.health().detail).toMatchObject({ expired: 5, published: 5 });
  });

  it('idle: looks again every second, or at once when woken by a commit', async () => {
    const outbox = new MemoryOutbox();
    const publisher = fakePublisher(1);
    drain = new OutboxDrain({ outbox: () => outbox, publisher, batchSize: 10, log: captureLogger().log });
    await drain.start();
    await vi.advanceTimersByTimeAsync(10);
    const peeks = outbox.peeks;
    await vi.advanceTimersByTimeAsync(980);
    expect(outbox.peeks).toBe(peeks);
    await vi.advanceTimersByTimeAsync(20);
    expect(outbox.peeks).toBe(peeks + 1);
    outbox.add(3);
    drain.wake();
    await vi.advanceTimersByTimeAsync(5);
    expect(outbox.depth()).toBe(0);
    expect(publisher.sent).toEqual([1, 2, 3]);
  });
});
