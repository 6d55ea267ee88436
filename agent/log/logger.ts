import { pino, type DestinationStream, type Logger } from 'pino';
import { REDACTED, type SecretScrubber } from '../config/redact.js';

export type { Logger };

export interface LoggerOptions {
  level: string;
  scrubber: SecretScrubber;
  /** Defaults to stdout; tests pass a capturing stream. */
  destination?: DestinationStream;
}

/**
 * The one root logger: JSON lines that journald and log shippers read. Secrets are masked
 * twice: by key path (any `password` field), and by scrubbing every finished line of known
 * secret values and URL credentials, so a secret in a message or an error is masked too.
 * Lines are written synchronously: logging is never per frame, and a crash must not eat the
 * lines that explain it. Subsystems get `logger.child({ module })`.
 */
export function createLogger(options: LoggerOptions): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: true });
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
        streamWrite: (line) => options.scrubber.scrub(line),
      },
    },
    destination,
  );
}
