/**
 * The release tarball (`./build.sh --release`): its checksum, what is in it and what is not,
 * and that it runs as it is: unpacked into an empty directory, with nothing installed by npm,
 * it fetches its models and clip from the mirror and runs the demo until SIGTERM.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/free-port.js';
import { listenNotifySocket } from '../support/notify-socket.js';
import { assetMirror, ensureReleaseTarball, sha256, tempDir, unpack, type ReleaseTarball } from './support.js';

let release: ReleaseTarball;
const cleanup: string[] = [];

beforeAll(() => {
  release = ensureReleaseTarball();
  console.log(
    `release: ${path.basename(release.tarball)} ${(release.bytes / 1048576).toFixed(1)} MB, ` +
      (release.built ? `built in ${release.seconds.toFixed(1)} s` : `up to date (checked in ${release.seconds.toFixed(1)} s)`),
  );
}, 600_000);
afterAll(() => {
  for (const dir of cleanup) fs.rmSync(dir, { recursive: true, force: true });
});

describe('release tarball', () => {
  it('comes with a .sha256 file that sha256sum -c accepts', () => {
    const [hash, name] = fs.readFileSync(release.sha256File, 'utf8').trim().split(/\s+/);
    expect(name).toBe(path.basename(release.tarball));
    expect(hash).toBe(sha256(release.tarball));
    const check = spawnSync('sha256sum', ['-c', path.basename(release.sha256File)], { cwd: path.dirname(release.tarball), encoding: 'utf8' });
    expect(check.stdout).toContain(': OK');
    expect(check.status).toBe(0);
  });

  it('holds the compiled agent, production node_modules, unit, installer and docs; no models, clips, sources or dev tools', () => {
    const entries = execFileSync('tar', ['-tzf', release.tarball], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
      .split('\n')
      .filter((line) => line !== '');
    const top = `${release.topDir}/`;
    expect(entries.every((entry) => entry.startsWith(top))).toBe(true);
    const files = new Set(entries.map((entry) => entry.slice(top.length)));
    for (const expected of [
      'package.json',
      'package-lock.json',
      'release-info.json',
      'README.md',
      'docs/packaging.md',
      'docs/operations.md',
      'dist/agent/cli/bin.js',
      'models/catalog.json',
      'models/manifests/yolox-nano-int8.json',
      'models/manifests/yolox-nano.json',
      'systemd/cctv-agent.service',
      'systemd/cctv-agent.sysusers',
      'systemd/config.yaml',
      'scripts/install.sh',
      'scripts/uninstall.sh',
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      'node_modules/unix-dgram/build/Release/unix_dgram.node',
      `node_modules/onnxruntime-node/bin/napi-v6/${process.platform}/${process.arch}/onnxruntime_binding.node`,
      `node_modules/@ffmpeg-installer/${process.platform}-${process.arch}/ffmpeg`,
      'node_modules/mqtt/package.json',
      'node_modules/aedes/package.json',
      // sharp encodes evidence snapshots and draws counting lines: a runtime dependency with its libvips.
      'node_modules/sharp/package.json',
      `node_modules/@img/sharp-${process.platform}-${process.arch}/package.json`,
      // The self-test's golden samples, named by the manifests.
      'models/golden/yolox-nano-int8.golden.json',
    ]) {
      expect(files, expected).toContain(expected);
    }
    const forbidden = [
      /^models\/assets\//, // fetched assets: never redistributed (the highway clip's licence)
      /\.(onnx|mp4|avi|png|jpg)$/,
      /^agent\//, // TypeScript sources
      /^test\//,
      /^bench\//,
      /^data\//,
      /^\.git/,
      /^node_modules\/(typescript|vitest|@types\/better-sqlite3|@types\/fluent-ffmpeg)\//,
      /^node_modules\/onnxruntime-node\/bin\/napi-v6\/(darwin|win32)\//,
      /^dist\/.*\.map$/, // no source maps: the TypeScript is not shipped
    ];
    const bad = [...files].filter((file) => forbidden.some((pattern) => pattern.test(file)));
    expect(bad).toEqual([]);
    const info = JSON.parse(execFileSync('tar', ['-xzOf', release.tarball, `${top}release-info.json`], { encoding: 'utf8' })) as Record<string, unknown>;
    expect(info).toMatchObject({
      name: 'cctv-edge-agent',
      version: release.version,
      platform: process.platform,
      arch: process.arch,
      nodeModuleAbi: process.versions.modules,
    });
  });

  it('unpacked into an empty directory, fetches its assets from the mirror and runs the demo; SIGTERM exits 0', async () => {
    const root = tempDir('cctv-release-');
    cleanup.push(root);
    const app = path.join(unpack(release.tarball, root), release.topDir);
    const bin = path.join(app, 'dist', 'agent', 'cli', 'bin.js');
    const mirror = assetMirror();
    const env = { PATH: process.env['PATH'], HOME: process.env['HOME'], ...(mirror ? { CCTV_ASSET_MIRROR: mirror } : {}) };

    const fetched = spawnSync(
      process.execPath,
      [bin, 'assets', 'fetch', 'yolox-nano-int8.onnx', 'yolox-nano.onnx', 'coco-labels.txt', 'highway-cctv-320x240.mp4'],
      {
        cwd: root,
        env,
        encoding: 'utf8',
      },
    );
    console.log(fetched.stdout.trim());
    expect(fetched.status, fetched.stderr).toBe(0);
    expect(fs.existsSync(path.join(app, 'models', 'assets', 'highway-cctv-320x240.mp4'))).toBe(true);

    const cwd = path.join(root, 'run');
    fs.mkdirSync(cwd);
    const port = await freePort();
    const notify = listenNotifySocket();
    let child: ChildProcess | undefined;
    let client: mqtt.MqttClient | undefined;
    try {
      child = spawn(process.execPath, [bin, 'demo'], {
        cwd,
        env: { ...env, CCTV_MQTT__EMBEDDED_BROKER__PORT: String(port), NOTIFY_SOCKET: notify.path, MALLOC_ARENA_MAX: '2' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child!.once('exit', (code, signal) => resolve({ code, signal })),
      );
      const logs: Array<Record<string, unknown>> = [];
      let stderr = '';
      child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      let partial = '';
      let onLog: (() => void) | undefined;
      child.stdout!.on('data', (chunk: Buffer) => {
        partial += chunk.toString();
        const lines = partial.split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          try {
            logs.push(JSON.parse(line) as Record<string, unknown>);
          } catch {
            logs.push({ msg: line });
          }
        }
        onLog?.();
      });
      const waitForLog = (predicate: (line: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no such log line within ${timeoutMs} ms; logs:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\nstderr:\n${stderr}`)),
            timeoutMs,
          );
          const check = (): void => {
            const found = logs.find(predicate);
            if (found) {
              clearTimeout(timer);
              onLog = undefined;
              resolve(found);
            }
          };
          onLog = check;
          check();
        });

      await waitForLog((line) => line['msg'] === 'camera state' && line['to'] === 'streaming', 60_000);
      // Everything it runs comes from the unpacked tree.
      const probed = logs.find((line) => line['msg'] === 'ffmpeg probed');
      expect(String(probed?.['ffmpeg']).startsWith(`${app}/node_modules/`), String(probed?.['ffmpeg'])).toBe(true);
      // model.manifest "auto": int8 or float, whichever this CPU ran faster when timed at start
      // (the two are within a few percent of each other on x86 CPUs, VNNI or not).
      const chosen = logs.find((line) => String(line['msg']).startsWith('model chosen by measurement'));
      const loaded = logs.find((line) => line['msg'] === 'model loaded');
      const modelId = String(loaded?.['model']);
      expect(['yolox-nano-int8', 'yolox-nano']).toContain(modelId);
      if (chosen) expect(chosen['chosen']).toBe(modelId);
      expect(loaded).toMatchObject({ file: path.join(app, 'models', 'assets', `${modelId}.onnx`) });

      // A few results, as an MQTT client on the box sees them.
      const results: Array<Record<string, unknown>> = [];
      client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 500 });
      client.on('message', (_topic, payload) => results.push(JSON.parse(payload.toString()) as Record<string, unknown>));
      await new Promise<void>((resolve, reject) => {
        client!.once('connect', () => client!.subscribe('cctv/+/results', { qos: 1 }, (error) => (error ? reject(error) : resolve())));
      });
      const deadline = Date.now() + 30_000;
      while (results.length < 5 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
      expect(results.length).toBeGreaterThanOrEqual(5);
      for (const result of results) expect(result).toMatchObject({ cameraId: 'highway-demo', model: { id: modelId } });
      const vehicles = results.reduce((sum, result) => sum + ((result['vehicles'] as unknown[] | undefined)?.length ?? 0), 0);
      expect(vehicles).toBeGreaterThan(0);
      console.log(`release demo: ${results.length} results, ${vehicles} vehicles; notify: ${JSON.stringify(notify.messages.slice(0, 2))}`);
      client.end(true);
      client = undefined;

      // The addon behind Type=notify works from the tarball.
      expect(notify.messages.some((message) => message.startsWith('READY=1'))).toBe(true);

      child.kill('SIGTERM');
      const { code, signal } = await exited;
      expect({ code, signal, stderr }).toMatchObject({ code: 0, signal: null });
      expect(notify.messages.some((message) => message.startsWith('STOPPING=1'))).toBe(true);
      expect(fs.existsSync(path.join(cwd, 'data', 'agent.db'))).toBe(true);
    } finally {
      client?.end(true);
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      notify.close();
    }
  }, 180_000);
});
