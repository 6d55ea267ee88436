import { afterEach, describe, expect, it } from 'vitest';
import { createNotifier } from '../../agent/lifecycle/sd-notify.js';
import { captureLogger } from '../support/capture-log.js';
import { listenNotifySocket } from '../support/notify-socket.js';

let socket: ReturnType<typeof listenNotifySocket> | undefined;
afterEach(() => socket?.close());

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('sd_notify', () => {
  it('does nothing without NOTIFY_SOCKET', () => {
    const notifier = createNotifier({}, captureLogger().log);
    expect(notifier.enabled).toBe(false);
    notifier.ready();
  });

  it('sends READY, STATUS, WATCHDOG and STOPPING datagrams to a real unix socket', async () => {
    socket = listenNotifySocket();
    const notifier = createNotifier({ NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '4000000' }, captureLogger().log);
    expect(notifier.watchdogIntervalMs).toBe(2000);
    notifier.ready('running');
    notifier.status('2 cameras');
    notifier.watchdog();
    notifier.stopping();
    await settle();
    notifier.close();
    expect(socket.messages).toEqual(['READY=1\nSTATUS=running', 'STATUS=2 cameras', 'WATCHDOG=1', 'STOPPING=1']);
  });

  it('ignores a watchdog meant for another process', () => {
    socket = listenNotifySocket();
    const notifier = createNotifier({ NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: '4000000', WATCHDOG_PID: '1' }, captureLogger().log);
    expect(notifier.watchdogIntervalMs).toBeUndefined();
    notifier.close();
  });
});
