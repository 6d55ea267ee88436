/**
 * A looping H.264 RTSP "camera" for tests: spawns
 * `/usr/bin/python3 test/rig/rtsp_server.py` (GStreamer RTSP server) and
 * waits for its READY line. See test/rig/rtsp_server.py for the behaviour.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { spawnManaged, waitUntil, type ManagedProcess } from './managed-process.js';

/** The system interpreter: it has PyGObject (gi); a pyenv `python3` on PATH may not. */
const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('../rig/rtsp_server.py', import.meta.url));
const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 15_000;
const CONTROL_ACK_TIMEOUT_MS = 3_000;
const STOP_GRACE_MS = 5_000;

export interface RtspServerOptions {
  /** Video file: MP4 with H.264 (SPS/PPS repeated on keyframes), e.g. assetPath('highway-cctv-320x240.mp4'). */
  file: string;
  /** Mount point, default "/stream". */
  mount?: string;
  /** With password: clients must authenticate (401 otherwise). */
  user?: string;
  password?: string;
  /** Which auth schemes the server offers, default both Basic and Digest. */
  authMethods?: 'basic' | 'digest' | 'both';
  /** TCP port; default: any free port chosen by the server itself (no race). */
  port?: number;
  /** pauseSending() also silences RTCP sender reports (default: only RTP video stops). */
  pauseRtcp?: boolean;
}

export interface RtspServerHandle {
  /** rtsp://127.0.0.1:PORT/stream, without credentials. */
  url: string;
  /** url with user:password@ (percent-encoded) when the server requires auth, else url. */
  urlWithCredentials: string;
  port: number;
  mount: string;
  user?: string;
  password?: string;
  /** Server pid, or undefined while stopped. */
  pid(): number | undefined;
  isRunning(): boolean;
  /** SIGTERM, wait for exit up to 5 s, then SIGKILL. Idempotent. */
  stop(): Promise<void>;
  /** Stops the server and starts it again on the same port (clients are disconnected). */
  restart(): Promise<void>;
  /** Simulates a crash: SIGKILL, no restart. restart() brings it back. */
  kill(): Promise<void>;
  /**
   * The camera freezes: sessions stay connected but no video is sent any more
   * (RTCP continues unless pauseRtcp). Resolves once the server acknowledged.
   */
  pauseSending(): Promise<void>;
  /** Video flows again from the next keyframe. Resolves once the server acknowledged. */
  resumeSending(): Promise<void>;
  /** Everything the server (all its incarnations) wrote to stdout/stderr. */
  logs(): string;
}

function countOccurrences(haystack: string, needle: string): number {
  let n = 0;
  for (let i = haystack.indexOf(needle); i !== -1; i = haystack.indexOf(needle, i + needle.length)) n++;
  return n;
}

export async function startRtspServer(options: RtspServerOptions): Promise<RtspServerHandle> {
  if (!existsSync(options.file)) throw new Error(`startRtspServer: video file not found: ${options.file}`);
  if (!existsSync(PYTHON)) throw new Error(`startRtspServer: ${PYTHON} not found (run scripts/install-test-deps.sh)`);
  if ((options.user === undefined) !== (options.password === undefined)) {
    throw new Error('startRtspServer: user and password go together');
  }
  const mount = options.mount ?? '/stream';
  if (!mount.startsWith('/')) throw new Error(`startRtspServer: mount must start with "/": ${mount}`);

  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' };
  // A pyenv/virtualenv environment must not leak into the system interpreter.
  delete env.PYTHONHOME;
  delete env.PYTHONPATH;
  delete env.VIRTUAL_ENV;

  let proc: ManagedProcess | undefined;
  let history = '';
  let stopped = false;

  const launch = async (port: number): Promise<number> => {
    const args = [SCRIPT, '--port', String(port), '--file', options.file, '--mount', mount, '--address', HOST];
    if (options.user !== undefined && options.password !== undefined) {
      args.push('--user', options.user, '--password', options.password);
      args.push('--auth-methods', options.authMethods ?? 'both');
    }
    if (options.pauseRtcp) args.push('--pause-rtcp');

    let stdout = '';
    const p = spawnManaged({
      name: 'rtsp_server.py',
      command: PYTHON,
      args,
      env,
      onStdout: (text) => {
        stdout += text;
      },
    });
    proc = p;
    let bound = 0;
    try {
      await waitUntil(
        p,
        'its READY line',
        () => {
          const m = /^READY port=(\d+)$/m.exec(stdout);
          if (m?.[1]) bound = Number(m[1]);
          return bound > 0;
        },
        READY_TIMEOUT_MS,
      );
    } catch (err) {
      await p.stop(STOP_GRACE_MS);
      history += p.logs();
      proc = undefined;
      throw err;
    }
    return bound;
  };

  const stopProc = async (): Promise<void> => {
    const p = proc;
    if (!p) return;
    await p.stop(STOP_GRACE_MS);
    history += p.logs();
    proc = undefined;
  };

  const control = async (sig: 'SIGUSR1' | 'SIGUSR2', ack: string): Promise<void> => {
    const p = proc;
    if (!p?.isRunning()) throw new Error(`rtsp_server.py: not running, cannot send ${sig}`);
    const before = countOccurrences(p.logs(), ack);
    p.signal(sig);
    await waitUntil(p, `acknowledgement of ${sig}`, () => countOccurrences(p.logs(), ack) > before, CONTROL_ACK_TIMEOUT_MS, 20);
  };

  const port = await launch(options.port ?? 0);
  const url = `rtsp://${HOST}:${port}${mount}`;
  const urlWithCredentials =
    options.user !== undefined && options.password !== undefined
      ? `rtsp://${encodeURIComponent(options.user)}:${encodeURIComponent(options.password)}@${HOST}:${port}${mount}`
      : url;

  return {
    url,
    urlWithCredentials,
    port,
    mount,
    user: options.user,
    password: options.password,
    pid: () => (proc?.isRunning() ? proc.pid : undefined),
    isRunning: () => proc?.isRunning() ?? false,
    async stop() {
      stopped = true;
      await stopProc();
    },
    async restart() {
      if (stopped) throw new Error('rtsp_server.py: restart() after stop()');
      await stopProc();
      await launch(port);
    },
    async kill() {
      const p = proc;
      if (!p) return;
      p.signal('SIGKILL');
      await p.exited;
      await stopProc();
    },
    pauseSending: () => control('SIGUSR1', 'control: paused'),
    resumeSending: () => control('SIGUSR2', 'control: resumed'),
    logs: () => history + (proc?.logs() ?? ''),
  };
}
