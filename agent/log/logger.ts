import fs from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';
import { REDACTED, type SecretScrubber } from '../config/redact.js';

export type { Logger };

export interface LoggerOptions {
  level: string;
  scrubber: SecretScrubber;
  /** Defaults to stdout; tests pass a capturing stream. */
  destination?: DestinationStream;
  /**
   * Start each line with its syslog priority (`<4>` for warn), which journald strips and
   * files the line under, so `journalctl -p warning` works. Default: when stdout is the journal.
   */
  syslogPrefix?: boolean;
}

/** pino's levels as syslog priorities (sd-daemon(3): `<N>` at the start of a line). */
const PRIORITY: Record<string, number> = { trace: 7, debug: 7, info: 6, warn: 4, error: 3, fatal: 2 };
const LEVEL_START = '{"level":"';

/** `<N>` + the line, from the level pino writes first ({"level":"warn",...}). */
export function withSyslogPriority(line: string): string {
  if (!line.startsWith(LEVEL_START)) return line;
  const end = line.indexOf('"', LEVEL_START.length);
  const priority = PRIORITY[line.slice(LEVEL_START.length, end)];
  return priority === undefined ? line : `<${priority}>${line}`;
}

/**
 * systemd sets JOURNAL_STREAM to the device and inode of the journal stream it connected to
 * stdout; when fd 1 is still that stream, the agent's lines go to journald (systemd.exec(5)).
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env, stat: () => { dev: number; ino: number } = () => fs.fstatSync(1)): boolean {
  const stream = env['JOURNAL_STREAM'];
  if (!stream) return false;
  const [dev, ino] = stream.split(':').map(Number);
  try {
    const actual = stat();
    return actual.dev === dev && actual.ino === ino;
  } catch {
    return false; // no stdout to compare with: not the journal
  }
}

/**
 * The one root logger: JSON lines that journald and log shippers read. Secrets are masked
 * twice: by key path (any `password` field), and by scrubbing every finished line of known
 * secret values and URL credentials, so a secret in a message or an error is masked too.
 * Lines are written synchronously: logging is never per frame, and a crash must not eat the
 * lines that explain it. Subsystems get `logger.child({ module })`. Under systemd each line
 * carries its syslog priority, so `journalctl -p warning` shows warnings and errors only.
 */
export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: true });
  const prefix = options.syslogPrefix ?? (options.destination === undefined && stdoutIsJournal());
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: ['password', '*.password', '*.*.password', 'passwordFile', 'headers.authorization'],
        censor: REDACTED,
      },
      hooks: {
        streamWrite: prefix ? (line) => withSyslogPriority(options.scrubber.scrub(line)) : (line) => options.scrubber.scrub(line),
      },
    },
    destination,
  );
}
