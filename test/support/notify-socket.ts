import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

interface UnixDgramServer {
  bind(path: string): void;
  on(event: 'message', listener: (message: Buffer) => void): void;
  on(event: 'error', listener: (error: Error) => void): void;
  close(): void;
}

/** A real unix datagram socket standing in for systemd's NOTIFY_SOCKET. */
export function listenNotifySocket(): { path: string; messages: string[]; close: () => void } {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-notify-'));
  const socketPath = path.join(directory, 'notify.sock');
  const unixDgram = createRequire(import.meta.url)('unix-dgram') as { createSocket(type: 'unix_dgram', listener?: (message: Buffer) => void): UnixDgramServer };
  const messages: string[] = [];
  const server = unixDgram.createSocket('unix_dgram', (message) => messages.push(message.toString()));
  server.on('error', (error) => messages.push(`ERROR ${error.message}`));
  server.bind(socketPath);
  return {
    path: socketPath,
    messages,
    close: () => {
      server.close();
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}
