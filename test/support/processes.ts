/**
 * Process-table helpers for asserting that tests leave no processes behind
 * (ffmpeg in particular).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface ProcessInfo {
  pid: number;
  ppid: number;
  /** Kernel command name (at most 15 characters), e.g. "ffmpeg". */
  comm: string;
  /** Full command line ("[ffmpeg] <defunct>" style for zombies). */
  args: string;
}

async function ps(columns: string): Promise<string> {
  const { stdout } = await execFileAsync('ps', ['-eo', columns], { maxBuffer: 16 * 1024 * 1024, timeout: 10_000 });
  return stdout;
}

/**
 * Every process on the machine (`ps -eo pid=,ppid=,comm=,args=`). comm is
 * read in a separate ps call, keyed by pid, because it may contain spaces and
 * would make the one-line format ambiguous. The ps processes themselves are
 * left out.
 */
export async function listProcesses(): Promise<ProcessInfo[]> {
  const [withArgs, withComm] = await Promise.all([ps('pid=,ppid=,args='), ps('pid=,comm=')]);
  const comms = new Map<number, string>();
  for (const line of withComm.split('\n')) {
    const m = /^\s*(\d+)\s(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) comms.set(Number(m[1]), m[2].trim());
  }
  const out: ProcessInfo[] = [];
  for (const line of withArgs.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s(.*)$/.exec(line);
    if (m?.[1] === undefined || m[2] === undefined || m[3] === undefined) continue;
    const pid = Number(m[1]);
    const args = m[3].trim();
    const comm = comms.get(pid) ?? path.basename(args.split(/\s+/)[0] ?? '');
    if (comm === 'ps') continue;
    out.push({ pid, ppid: Number(m[2]), comm, args });
  }
  return out;
}

/** All descendants (children, grandchildren, ...) of pid, from one snapshot of the process table. */
export async function descendantsOf(pid: number, processes?: ProcessInfo[]): Promise<ProcessInfo[]> {
  const all = processes ?? (await listProcesses());
  const byParent = new Map<number, ProcessInfo[]>();
  for (const p of all) {
    const list = byParent.get(p.ppid);
    if (list) list.push(p);
    else byParent.set(p.ppid, [p]);
  }
  const out: ProcessInfo[] = [];
  const queue = [pid];
  const seen = new Set<number>([pid]);
  while (queue.length > 0) {
    const parent = queue.shift() as number;
    for (const child of byParent.get(parent) ?? []) {
      if (seen.has(child.pid)) continue;
      seen.add(child.pid);
      out.push(child);
      queue.push(child.pid);
    }
  }
  return out;
}

/** True for ffmpeg processes (by kernel name or by argv[0], e.g. the bundled .../ffmpeg). */
export function isFfmpeg(p: ProcessInfo): boolean {
  if (p.comm === 'ffmpeg') return true;
  const argv0 = p.args.split(/\s+/)[0] ?? '';
  return path.basename(argv0) === 'ffmpeg' || p.args.startsWith('[ffmpeg]');
}

/** ffmpeg processes anywhere on the machine, optionally filtered by their command line. */
export async function findFfmpegProcesses(filter?: (args: string) => boolean): Promise<ProcessInfo[]> {
  const all = await listProcesses();
  return all.filter((p) => isFfmpeg(p) && (filter === undefined || filter(p.args)));
}

/** ffmpeg processes among the descendants of pid (direct children or spawned through a shell). */
export async function ffmpegChildrenOf(pid: number): Promise<ProcessInfo[]> {
  return (await descendantsOf(pid)).filter(isFfmpeg);
}

/** True while a process with this pid exists (zombies included). */
export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Polls (every 100 ms) until no ffmpeg process matches `filter` (all ffmpeg
 * processes when omitted). Rejects after timeoutMs, listing the survivors.
 * Zombies count as survivors: they mean a parent did not reap its child.
 */
export async function waitForNoFfmpeg(filter?: (args: string) => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await findFfmpegProcesses(filter);
    if (found.length === 0) return;
    if (Date.now() >= deadline) {
      const list = found.map((p) => `  pid ${p.pid} (ppid ${p.ppid}): ${p.args}`).join('\n');
      throw new Error(`waitForNoFfmpeg: ${found.length} ffmpeg process(es) still present after ${timeoutMs} ms:\n${list}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Polls until pid is gone; rejects after timeoutMs. */
export async function waitForPidExit(pid: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (isPidAlive(pid)) {
    if (Date.now() >= deadline) throw new Error(`process ${pid} still alive after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Polls until no ffmpeg is left among pid's descendants (this test process by default). */
export async function waitForNoFfmpegChildren(pid: number = process.pid, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await ffmpegChildrenOf(pid);
    if (found.length === 0) return;
    if (Date.now() >= deadline) {
      throw new Error(
        `${found.length} ffmpeg child process(es) of ${pid} still present after ${timeoutMs} ms:\n${found.map((p) => `  pid ${p.pid}: ${p.args}`).join('\n')}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
