import { describe, expect, it } from 'vitest';
import { main } from '../../agent/cli/main.js';
import { formatStatus } from '../../agent/cli/status-command.js';
import type { StatusSnapshot } from '../../agent/telemetry/status-file.js';

function captureIo(): { io: never; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const writer = (append: (text: string) => void) => ({
    write: (text: string): boolean => {
      append(text);
      return true;
    },
  });
  const io = {
    out: writer((text) => {
      out += text;
    }),
    err: writer((text) => {
      err += text;
    }),
    env: {},
  } as never;
  return { io, out: () => out, err: () => err };
}

describe("CLI papercuts from a new user's first hour (issue #12)", () => {
  it('`model quantize --help` and `model layers --help` print the usage and exit 0', async () => {
    for (const args of [
      ['model', 'quantize', '--help'],
      ['model', 'quantize', '-h'],
      ['model', 'layers', '--help'],
    ]) {
      const { io, out, err } = captureIo();
      expect(await main(args, io), err()).toBe(0);
      expect(out()).toContain('cctv-agent model quantize --model FLOAT.onnx');
    }
  });

  it("a stopped agent's status shows the outbox depth it had when it stopped, never -1", () => {
    const snapshot = (depth: unknown, state: StatusSnapshot['state']): StatusSnapshot => ({
      pid: 1,
      deviceId: 'dev',
      startedAt: '2026-12-04T10:00:00.000Z',
      writtenAt: '2026-12-04T10:05:00.000Z',
      state,
      model: { id: 'm', version: '1' },
      services: { mqtt: { ok: true, state: 'stopped' }, 'outbox-drain': { ok: true, state: 'stopped', detail: { depth, published: 7 } } },
    });
    const now = Date.parse('2026-12-04T10:05:01.000Z');
    expect(formatStatus(snapshot(12, 'stopped'), false, now)).toContain('outbox depth 12 (when it stopped), published 7');
    expect(formatStatus(snapshot(null, 'stopped'), false, now)).toContain('outbox depth unknown');
    // status.json files written by earlier versions carry -1.
    expect(formatStatus(snapshot(-1, 'stopped'), false, now)).toContain('outbox depth unknown');
    expect(formatStatus(snapshot(3, 'running'), true, now)).toContain('outbox depth 3, published 7');
  });
});
