import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SecretScrubber } from '../../agent/config/redact.js';
import { createLogger, stdoutIsJournal, withSyslogPriority } from '../../agent/log/logger.js';

describe('journald priorities', () => {
  it("every line starts with its level's syslog priority when writing to the journal", () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        done();
      },
    });
    const log = createLogger({ level: 'debug', scrubber: new SecretScrubber(), destination: destination as never, syslogPrefix: true });
    log.debug('d');
    log.info('i');
    log.child({ module: 'x' }).warn('w');
    log.error('e');
    log.fatal('f');
    expect(lines.map((line) => line.slice(0, line.indexOf('{')))).toEqual(['<7>', '<6>', '<4>', '<3>', '<2>']);
    expect(JSON.parse(lines[2]!.slice(3))).toMatchObject({ level: 'warn', module: 'x', msg: 'w' });
  });

  it("no prefix on a terminal or a pipe; lines that are not pino's are left alone", () => {
    expect(withSyslogPriority('not json\n')).toBe('not json\n');
    expect(withSyslogPriority('{"level":"custom","msg":"x"}\n')).toBe('{"level":"custom","msg":"x"}\n');
    expect(stdoutIsJournal({})).toBe(false);
    expect(stdoutIsJournal({ JOURNAL_STREAM: '8:1234' }, () => ({ dev: 8, ino: 1234 }))).toBe(true);
    // stdout redirected elsewhere after systemd set the variable: not the journal any more.
    expect(stdoutIsJournal({ JOURNAL_STREAM: '8:1234' }, () => ({ dev: 8, ino: 999 }))).toBe(false);
  });
});
