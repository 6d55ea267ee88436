import { Writable } from 'node:stream';
import { SecretScrubber } from '../../agent/config/redact.js';
import { createLogger, type Logger } from '../../agent/log/logger.js';

/** A real pino logger writing into memory, for tests that read what was logged. */
export function captureLogger(scrubber = new SecretScrubber()): { log: Logger; lines: () => string[] } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  const log = createLogger({ level: 'debug', scrubber, destination: destination as unknown as Parameters<typeof createLogger>[0]['destination'] });
  return {
    log,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line !== ''),
  };
}
