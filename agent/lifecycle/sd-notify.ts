import { createRequire } from 'node:module';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';

/**
 * systemd's notify protocol: datagrams to the unix socket named by NOTIFY_SOCKET. Node has no
 * unix datagram sockets, so the optional native `unix-dgram` addon sends them; without
 * NOTIFY_SOCKET every call is a no-op (as in zigbee2mqtt's sd-notify).
 */
export interface Notifier {
  readonly enabled: boolean;
  ready(status?: string): void;
  stopping(status?: string): void;
  status(text: string): void;
  watchdog(): void;
  /** Half of WATCHDOG_USEC, when systemd asked for a watchdog. */
  readonly watchdogIntervalMs: number | undefined;
  close(): void;
}

interface UnixDgramSocket {
  send(buffer: Buffer, offset: number, length: number, path: string, callback?: (error?: Error) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  close(): void;
}

const disabled: Notifier = {
  enabled: false,
  ready: () => undefined,
  stopping: () => undefined,
  status: () => undefined,
  watchdog: () => undefined,
  watchdogIntervalMs: undefined,
  close: () => undefined,
};

export function createNotifier(env: NodeJS.ProcessEnv, log: Logger): Notifier {
  const socketPath = env['NOTIFY_SOCKET'];
  if (!socketPath) return disabled;
  let socket: UnixDgramSocket;
  try {
    const unixDgram = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram'): UnixDgramSocket };
    socket = unixDgram.createSocket('unix_dgram');
  } catch (error) {
    log.warn({ err: errorMessage(error) }, 'NOTIFY_SOCKET is set but the unix-dgram addon is missing: systemd will not get READY');
    return disabled;
  }
  socket.on('error', (error) => log.warn({ err: errorMessage(error) }, 'sd_notify send failed'));
  // An abstract socket is written "@name" in the environment.
  const target = socketPath.startsWith('@') ? `\0${socketPath.slice(1)}` : socketPath;
  const send = (message: string): void => {
    const buffer = Buffer.from(message);
    socket.send(buffer, 0, buffer.length, target);
  };
  const watchdogUsec = Number(env['WATCHDOG_USEC']);
  const watchdogPid = env['WATCHDOG_PID'];
  const watchdogForUs = watchdogPid === undefined || Number(watchdogPid) === process.pid;
  return {
    enabled: true,
    ready: (status) => send(status ? `READY=1\nSTATUS=${status}` : 'READY=1'),
    stopping: (status) => send(status ? `STOPPING=1\nSTATUS=${status}` : 'STOPPING=1'),
    status: (text) => send(`STATUS=${text}`),
    watchdog: () => send('WATCHDOG=1'),
    watchdogIntervalMs: watchdogForUs && watchdogUsec > 0 ? Math.floor(watchdogUsec / 2000) : undefined,
    close: () => socket.close(),
  };
}
