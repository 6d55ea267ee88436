/**
 * Spawning and reliably stopping the rig's long-running child processes
 * (mosquitto, the RTSP server).
 *
 * - Each child gets its own process group (detached), and stop() signals the
 *   whole group: SIGTERM, wait up to `graceMs`, then SIGKILL.
 * - Where available the child is started through `setpriv --pdeathsig` so the
 *   kernel kills it if the test worker dies without cleaning up.
 * - A process 'exit' hook SIGKILLs any group still alive when the worker
 *   exits normally (e.g. a test forgot to call stop()).
 * - stdout and stderr are captured in memory (bounded) for logs().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';
const MAX_LOG_CHARS = 512 * 1024;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcessOptions {
  /** Short name used in error messages, e.g. "mosquitto". */
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Ask the kernel to SIGTERM the child when its parent (this worker) dies. Default true. */
  dieWithParent?: boolean;
  /** Called with each chunk of stdout (as text). */
  onStdout?: (text: string) => void;
  /** Called with each chunk of stderr (as text). */
  onStderr?: (text: string) => void;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  exitInfo(): ExitInfo | undefined;
  isRunning(): boolean;
  /** Captured stdout + stderr, interleaved in arrival order (last 512 KiB). */
  logs(): string;
  /** Sends a signal to the process itself (not the group). No-op once exited. */
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM the process group, wait up to graceMs (default 5000), then SIGKILL. Idempotent. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

const live = new Set<ManagedProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) killGroup(child.pid, 'SIGKILL');
  });
}

function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

/** Managed children of this process that have not exited yet. */
export function liveManagedProcesses(): ManagedProcess[] {
  return [...live];
}

export function spawnManaged(options: ManagedProcessOptions): ManagedProcess {
  installExitHook();
  const wrap = (options.dieWithParent ?? true) && existsSync(SETPRIV);
  const command = wrap ? SETPRIV : options.command;
  const args = wrap ? ['--pdeathsig', 'TERM', '--', options.command, ...options.args] : options.args;

  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) {
    // spawn failures (ENOENT...) leave pid undefined and are reported
    // asynchronously via 'error': swallow that event, throw now.
    child.once('error', () => undefined);
    throw new Error(`${options.name}: could not spawn ${command} (is it installed?)`);
  }
  const pid = child.pid;

  let log = '';
  const append = (text: string): void => {
    log += text;
    if (log.length > MAX_LOG_CHARS) log = log.slice(log.length - MAX_LOG_CHARS);
  };
  child.stdout?.setEncoding('utf8');
  child.stderr?.setEncoding('utf8');
  child.stdout?.on('data', (text: string) => {
    append(text);
    options.onStdout?.(text);
  });
  child.stderr?.on('data', (text: string) => {
    append(text);
    options.onStderr?.(text);
  });

  let info: ExitInfo | undefined;
  let stopping: Promise<ExitInfo> | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('error', (err) => {
      append(`\n[${options.name}: spawn error: ${err.message}]\n`);
      if (child.exitCode === null && child.signalCode === null && !child.killed) {
        // Never started: no 'exit' event will follow.
        info = { code: null, signal: null };
        live.delete(handle);
        resolve(info);
      }
    });
    child.once('exit', (code, sig) => {
      info = { code, signal: sig };
      live.delete(handle);
      resolve(info);
    });
  });

  const handle: ManagedProcess = {
    name: options.name,
    pid,
    exited,
    exitInfo: () => info,
    isRunning: () => info === undefined,
    logs: () => log,
    signal(sig) {
      if (info !== undefined) return;
      try {
        process.kill(pid, sig);
      } catch {
        /* raced with exit */
      }
    },
    stop(graceMs = 5000) {
      if (stopping) return stopping;
      stopping = (async () => {
        // Already gone: do not signal its (possibly recycled) pid/group.
        if (info !== undefined) return info;
        killGroup(pid, 'SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((resolve) => {
            timer = setTimeout(() => resolve(true), graceMs);
          }),
        ]);
        clearTimeout(timer);
        if (timedOut) {
          append(`\n[${options.name}: still running ${graceMs} ms after SIGTERM, sending SIGKILL]\n`);
        }
        // SIGKILL the group in any case: children of the leader may linger.
        killGroup(pid, 'SIGKILL');
        return exited;
      })();
      return stopping;
    },
  };
  live.add(handle);
  return handle;
}

/**
 * Waits until `ready()` is true, polling every `intervalMs`. Rejects early if
 * `proc` exits, or after `timeoutMs`; both errors carry the process logs.
 */
export async function waitUntil(
  proc: ManagedProcess,
  what: string,
  ready: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready()) return;
    const exit = proc.exitInfo();
    if (exit !== undefined) {
      throw new Error(`${proc.name} exited (code ${exit.code}, signal ${exit.signal}) before ${what}.\n` + `--- ${proc.name} output ---\n${proc.logs()}`);
    }
    if (Date.now() >= deadline) {
      throw new Error(`${proc.name}: timed out after ${timeoutMs} ms waiting for ${what}.\n--- ${proc.name} output ---\n${proc.logs()}`);
    }
    await Promise.race([proc.exited, new Promise((resolve) => setTimeout(resolve, intervalMs))]);
  }
}
