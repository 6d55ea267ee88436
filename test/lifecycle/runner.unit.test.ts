import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { AgentError } from '../../agent/errors.js';
import { ExitCode } from '../../agent/lifecycle/exit-codes.js';
import { ServiceRunner } from '../../agent/lifecycle/runner.js';
import type { Service } from '../../agent/lifecycle/service.js';
import { ShutdownController } from '../../agent/lifecycle/shutdown.js';
import { captureLogger } from '../support/capture-log.js';

function fakeService(name: string, journal: string[], options: { failStart?: boolean; failStop?: boolean; onStart?: () => Promise<void> } = {}): Service {
  return {
    name,
    async start() {
      journal.push(`start ${name}`);
      await options.onStart?.();
      if (options.failStart) throw new Error(`${name} broke`);
    },
    async stop() {
      journal.push(`stop ${name}`);
      if (options.failStop) throw new Error(`${name} will not stop`);
    },
    health: () => ({ ok: true, state: 'fake' }),
  };
}

describe('service runner', () => {
  it('starts in order and stops in reverse', async () => {
    const journal: string[] = [];
    const runner = new ServiceRunner(
      ['a', 'b', 'c'].map((name) => fakeService(name, journal)),
      captureLogger().log,
    );
    await runner.start(new AbortController().signal);
    expect(await runner.stop()).toEqual({ failed: [] });
    expect(journal).toEqual(['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
  });

  it('a failed start leaves the started ones (and the failing one) to stop', async () => {
    const journal: string[] = [];
    const runner = new ServiceRunner(
      [fakeService('a', journal), fakeService('b', journal, { failStart: true }), fakeService('c', journal)],
      captureLogger().log,
    );
    await expect(runner.start(new AbortController().signal)).rejects.toMatchObject({ code: 'STARTUP_FAILED' });
    await runner.stop();
    expect(journal).toEqual(['start a', 'start b', 'stop b', 'stop a']);
  });

  it('an abort during a step stops before the next step (every phase)', async () => {
    for (let phase = 0; phase < 3; phase++) {
      const journal: string[] = [];
      const controller = new AbortController();
      const services = ['a', 'b', 'c'].map((name, index) =>
        fakeService(name, journal, { onStart: async () => (index === phase ? controller.abort() : undefined) }),
      );
      const runner = new ServiceRunner(services, captureLogger().log);
      const error = await runner.start(controller.signal).then(
        () => undefined,
        (caught: unknown) => caught,
      );
      if (phase < 2) expect(error).toBeInstanceOf(AgentError);
      if (phase < 2) expect((error as AgentError).code).toBe('STARTUP_ABORTED');
      await runner.stop();
      expect(journal.filter((line) => line.startsWith('start'))).toHaveLength(phase + 1);
      expect(journal.filter((line) => line.startsWith('stop'))).toHaveLength(phase + 1);
    }
  });

  it('keeps stopping when one service fails to stop, and reports it', async () => {
    const journal: string[] = [];
    const runner = new ServiceRunner(
      [fakeService('a', journal), fakeService('b', journal, { failStop: true }), fakeService('c', journal)],
      captureLogger().log,
    );
    await runner.start(new AbortController().signal);
    expect(await runner.stop()).toEqual({ failed: ['b'] });
    expect(journal.slice(3)).toEqual(['stop c', 'stop b', 'stop a']);
  });
});

describe('shutdown controller', () => {
  function setup(cleanup: () => Promise<number>, timeoutMs = 1000, beforeExit?: () => Promise<void>, beforeExitMs?: number) {
    const emitter = new EventEmitter();
    const exits: number[] = [];
    const { log, lines } = captureLogger();
    new ShutdownController({
      log,
      timeoutMs,
      cleanup: cleanup as never,
      exit: (code) => exits.push(code),
      processLike: emitter,
      beforeExit,
      beforeExitMs,
    }).install();
    return { emitter, exits, lines };
  }
  const tick = (ms = 0): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  it('SIGTERM runs cleanup once and exits with its code', async () => {
    let calls = 0;
    const { emitter, exits } = setup(async () => {
      calls++;
      return ExitCode.OK;
    });
    emitter.emit('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(calls).toBe(1);
    expect(exits).toEqual([0]);
  });

  it('a second signal exits at once with 130', async () => {
    const { emitter, exits } = setup(() => new Promise(() => undefined));
    emitter.emit('SIGINT');
    emitter.emit('SIGINT');
    emitter.emit('SIGINT'); // a third one while exiting changes nothing
    await tick();
    expect(exits).toEqual([ExitCode.FORCED]);
  });

  it('a forced exit first waits for beforeExit (the inference run in flight), but not beyond its bound', async () => {
    let finishRun: () => void = () => undefined;
    const quiet = setup(
      () => new Promise(() => undefined),
      1000,
      () =>
        new Promise((resolve) => {
          finishRun = resolve;
        }),
    );
    quiet.emitter.emit('SIGTERM');
    quiet.emitter.emit('SIGTERM');
    await tick(20);
    expect(quiet.exits).toEqual([]);
    finishRun();
    await tick();
    expect(quiet.exits).toEqual([ExitCode.FORCED]);

    const hung = setup(
      () => new Promise(() => undefined),
      1000,
      () => new Promise(() => undefined),
      50,
    );
    hung.emitter.emit('SIGTERM');
    hung.emitter.emit('SIGTERM');
    await tick(120);
    expect(hung.exits).toEqual([ExitCode.FORCED]);
  });

  it('an uncaught exception shuts down cleanly and exits 1', async () => {
    const { emitter, exits, lines } = setup(async () => ExitCode.OK);
    emitter.emit('uncaughtException', new Error('boom'));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(exits).toEqual([ExitCode.FATAL]);
    expect(lines().some((line) => line.includes('"level":"fatal"') && line.includes('boom'))).toBe(true);
  });

  it('an unhandled rejection takes the same path', async () => {
    const { emitter, exits } = setup(async () => ExitCode.OK);
    emitter.emit('unhandledRejection', new Error('lost promise'));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(exits).toEqual([ExitCode.FATAL]);
  });

  it('the deadline ends a cleanup that hangs, with exit code 4', async () => {
    const { emitter, exits } = setup(() => new Promise(() => undefined), 50);
    emitter.emit('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(exits).toEqual([ExitCode.SHUTDOWN_INCOMPLETE]);
  });
});
