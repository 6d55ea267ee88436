/**
 * Shared by the packaging tests: the release tarball (built once by `./build.sh --release
 * --if-stale`, reused while nothing that goes into it changed), unpacking it, running the
 * installer, and a listing of a file tree precise enough to compare two installs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { projectRoot } from '../support/assets.js';

export { projectRoot };

export interface ReleaseTarball {
  version: string;
  /** release/cctv-edge-agent-<version>.tar.gz */
  tarball: string;
  sha256File: string;
  /** The top directory inside the tarball: cctv-edge-agent-<version>. */
  topDir: string;
  /** true when this call built it, false when an up-to-date one was reused. */
  built: boolean;
  seconds: number;
  bytes: number;
  buildOutput: string;
}

/** Builds the release tarball unless an up-to-date one exists (slow: about 20 s on 2 cores). */
export function ensureReleaseTarball(): ReleaseTarball {
  const version = (JSON.parse(fs.readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
  const started = Date.now();
  const run = spawnSync('bash', ['build.sh', '--release', '--if-stale'], {
    cwd: projectRoot,
    encoding: 'utf8',
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
  });
  const buildOutput = `${run.stdout}${run.stderr}`;
  if (run.status !== 0) throw new Error(`./build.sh --release failed (exit ${run.status}):\n${buildOutput}`);
  const tarball = path.join(projectRoot, 'release', `cctv-edge-agent-${version}.tar.gz`);
  return {
    version,
    tarball,
    sha256File: `${tarball}.sha256`,
    topDir: `cctv-edge-agent-${version}`,
    built: !/is up to date/.test(buildOutput),
    seconds: (Date.now() - started) / 1000,
    bytes: fs.statSync(tarball).size,
    buildOutput,
  };
}

export function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Unpacks a tarball (gzip or plain) into dir; returns dir. */
export function unpack(tarball: string, dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xf', tarball, '-C', dir]);
  return dir;
}

export function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * Every entry under root, sorted: path, type, permission bits, and the link target or the
 * content's sha256. Two trees with the same listing have the same files with the same bytes.
 */
export function treeListing(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const rel = path.relative(root, full);
      const st = fs.lstatSync(full);
      const mode = (st.mode & 0o7777).toString(8).padStart(4, '0');
      if (st.isSymbolicLink()) out.push(`${rel} link ${fs.readlinkSync(full)}`);
      else if (st.isDirectory()) {
        out.push(`${rel} dir ${mode}`);
        walk(full);
      } else if (st.isFile()) out.push(`${rel} file ${mode} ${sha256(full)}`);
      else out.push(`${rel} other ${mode}`);
    }
  };
  walk(root);
  return out;
}

export interface ScriptRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs scripts/install.sh or uninstall.sh (from the checkout unless script is given). */
export function runScript(script: string, args: string[], env: NodeJS.ProcessEnv = {}): ScriptRun {
  const file = path.isAbsolute(script) ? script : path.join(projectRoot, 'scripts', script);
  const run = spawnSync('bash', [file, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...env },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** The shared asset mirror, found as test/support/assets.ts does; undefined when absent. */
export function assetMirror(): string | undefined {
  const candidates = [process.env['CCTV_ASSET_MIRROR'], path.resolve(projectRoot, '..', 'shared', 'assets')];
  return candidates.find((dir): dir is string => dir !== undefined && dir !== '' && fs.existsSync(dir) && fs.statSync(dir).isDirectory());
}
