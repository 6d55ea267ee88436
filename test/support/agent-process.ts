import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../agent/paths.js';

export interface LogLine {
  level: string;
  msg: string;
  module?: string;
  [key: string]: unknown;
}

export interface AgentProcess {
  child: ChildProcess;
  /** Every stdout line parsed as JSON (non-JSON lines are kept under msg). */
  logs: LogLine[];
  stdout: () => string;
  stderr: () => string;
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  kill(signal?: NodeJS.Signals): void;
}

export function agentBin(): string {
  const bin = path.join(packageRoot(), 'dist', 'agent', 'cli', 'bin.js');
  if (!fs.existsSync(bin)) throw new Error(`${bin} is missing: run ./build.sh first (npm test does)`);
  return bin;
}

/** Runs the compiled agent as a real child process, as systemd or a user would. */
export function spawnAgent(args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string; nodeArgs?: string[] } = {}): AgentProcess {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), agentBin(), ...args], {
    cwd: options.cwd ?? packageRoot(),
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let out = '';
  let err = '';
  let partial = '';
  const waiters: Array<{ predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }> = [];
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (text: string) => {
    out += text;
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const raw of lines) {
      if (raw.trim() === '') continue;
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        line = { level: 'text', msg: raw };
      }
      logs.push(line);
      for (const waiter of [...waiters]) {
        if (waiter.predicate(line)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(line);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    err += text;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
  });
  return {
    child,
    logs,
    stdout: () => out,
    stderr: () => err,
    exited,
    kill: (signal = 'SIGTERM') => {
      child.kill(signal);
    },
    waitForLog: (predicate, timeoutMs = 20_000) => {
      const existing = logs.find(predicate);
      if (existing) return Promise.resolve(existing);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${err.slice(-2000)}; last logs: ${out.slice(-2000)}`)),
          timeoutMs,
        );
        waiters.push({
          predicate,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`agent exited before the log line; stderr: ${err.slice(-2000)}; last logs: ${out.slice(-2000)}`));
        });
      });
    },
  };
}

/** Kills (SIGKILL) and waits for an agent a test left running, so no test leaks a process. */
export async function killIfRunning(agent: AgentProcess | undefined): Promise<void> {
  if (agent && agent.child.exitCode === null && agent.child.signalCode === null) {
    agent.kill('SIGKILL');
    await agent.exited;
  }
}
