import { describe, expect, it } from 'vitest';
import { FrameReader } from '../../agent/ingest/frame-reader.js';
import { LatestFrameSlot } from '../../agent/ingest/frame-slot.js';

const FRAME = 12; // 2x2 pixels, 3 bytes each

function bytes(from: number, count: number): Buffer {
  return Buffer.from(Array.from({ length: count }, (_, i) => (from + i) % 256));
}

describe('frame reader and latest-frame slot', () => {
  it('cuts arbitrary chunks into exact frames, never a partial one', () => {
    const slot = new LatestFrameSlot('c', 2, 2, FRAME);
    const reader = new FrameReader(slot, FRAME, 0, () => 1000);
    const stream = bytes(0, FRAME * 3 + 5);
    const seen: number[][] = [];
    slot.setReadyListener(() => {
      const frame = slot.take()!;
      seen.push([frame.seq, frame.data[0]!, frame.data[FRAME - 1]!]);
      slot.release(frame);
    });
    let position = 0;
    for (const size of [5, 1, 13, 7, 15]) {
      reader.push(stream.subarray(position, position + size));
      position += size;
    }
    expect(seen).toEqual([
      [0, 0, 11],
      [1, 12, 23],
      [2, 24, 35],
    ]);
    expect(slot.framesIn).toBe(3);
    reader.reset(); // the 5 trailing bytes of a cut-off frame are dropped
    reader.push(bytes(100, FRAME));
    expect(seen[3]).toEqual([3, 100, 111]);
  });

  it('latest wins: an untaken frame is replaced and counted as dropped, buffers are reused', () => {
    const slot = new LatestFrameSlot('c', 2, 2, FRAME);
    const reader = new FrameReader(slot, FRAME);
    const buffers = new Set<Buffer>();
    for (let i = 0; i < 10; i++) {
      buffers.add(slot.writeTarget);
      reader.push(bytes(i, FRAME));
    }
    expect(slot.dropped).toBe(9);
    const frame = slot.take()!;
    expect(frame.seq).toBe(9);
    expect(frame.data[0]).toBe(9);
    // While one frame is held, the reader still has buffers to fill.
    reader.push(bytes(50, FRAME));
    reader.push(bytes(60, FRAME));
    expect(frame.data[0]).toBe(9);
    slot.release(frame);
    buffers.add(slot.writeTarget);
    expect(buffers.size).toBeLessThanOrEqual(3);
  });
});

describe('frame reader waiting for the model (files faster than real time)', () => {
  it('holds the rest of a multi-frame chunk, and chunks behind it, until the ready frame is taken', () => {
    const slot = new LatestFrameSlot('c', 2, 2, FRAME);
    const reader = new FrameReader(slot, FRAME);
    reader.waitForModel = true;
    const seen: number[] = [];
    const takeOne = (): void => {
      const frame = slot.take()!;
      seen.push(frame.data[0]!);
      slot.release(frame);
      reader.resume();
    };
    reader.push(bytes(0, FRAME * 3 + 4)); // three frames and a bit, in one read
    expect(slot.framesIn).toBe(1);
    expect(reader.holding).toBe(true);
    reader.push(bytes(40, FRAME - 4)); // more arrives while held: queued, not lost
    for (let i = 0; i < 4; i++) takeOne();
    expect(seen).toEqual([0, 12, 24, 36]);
    expect(slot.dropped).toBe(0);
    expect(reader.holding).toBe(false);
  });
});
