import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { manifestsDir } from '../../agent/paths.js';
import { spawnAgent } from '../support/agent-process.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-badconfig-');

const camera = '  - id: cam1\n    url: rtsp://192.0.2.10/stream\n';

interface Case {
  kind: string;
  yaml: (dir: string) => string;
  env?: Record<string, string>;
  /** The start of the one line: code and key path. */
  expected: RegExp;
}

const cases: Case[] = [
  {
    kind: 'wrong type',
    yaml: () => `cameras:\n${camera}    sampleFps: fast\n`,
    expected: /^cctv-agent: CONFIG_INVALID: cameras\.0\.sampleFps: .*expected number.*got "fast"/,
  },
  {
    kind: 'unknown key',
    yaml: () => `cameras:\n${camera}mqtt:\n  urll: mqtt://b:1883\n`,
    expected: /^cctv-agent: CONFIG_INVALID: mqtt\.urll: unknown key \(allowed here: enabled, url,/,
  },
  {
    kind: 'malformed camera URL',
    yaml: () => 'cameras:\n  - id: cam1\n    url: "rtsp://:554"\n',
    expected: /^cctv-agent: CONFIG_INVALID: cameras\.0\.url: is not a valid URL/,
  },
  {
    kind: 'malformed broker URL',
    yaml: () => `cameras:\n${camera}mqtt:\n  url: "mqtt//broker"\n`,
    expected: /^cctv-agent: CONFIG_INVALID: mqtt\.url: must be a URL like mqtt:\/\/host:1883/,
  },
  {
    kind: 'unsupported URL scheme',
    yaml: () => 'cameras:\n  - id: cam1\n    url: "ftp://h/x"\n',
    expected: /^cctv-agent: CONFIG_INVALID: cameras\.0\.url: scheme "ftp:" is not supported/,
  },
  {
    kind: 'missing model file',
    yaml: (dir) => {
      const manifest = JSON.parse(fs.readFileSync(path.join(manifestsDir(), 'yolox-nano.json'), 'utf8')) as Record<string, unknown>;
      manifest['file'] = 'no-such-model.onnx';
      fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
      return `cameras:\n${camera}model:\n  manifest: ${path.join(dir, 'manifest.json')}\n`;
    },
    expected: /^cctv-agent: MODEL_FILE_MISSING: model\.manifest: model file no-such-model\.onnx of yolox-nano not found/,
  },
  {
    kind: 'missing manifest',
    yaml: () => `cameras:\n${camera}model:\n  manifest: /nonexistent/model.json\n`,
    expected: /^cctv-agent: MODEL_FILE_MISSING: model\.manifest: \/nonexistent\/model\.json does not exist/,
  },
  {
    kind: 'negative rate',
    yaml: () => `cameras:\n${camera}    sampleFps: -5\n`,
    expected: /^cctv-agent: CONFIG_INVALID: cameras\.0\.sampleFps: Too small: expected number to be >0 \(got -5\)/,
  },
  {
    kind: 'bad enum',
    yaml: () => `cameras:\n${camera}    transport: carrier-pigeon\n`,
    expected: /^cctv-agent: CONFIG_INVALID: cameras\.0\.transport: Invalid option: expected one of "tcp"\|"udp"\|"auto"/,
  },
  {
    kind: 'unreadable secret file',
    yaml: () => `cameras:\n${camera}mqtt:\n  url: mqtt://b:1883\n  passwordFile: /nonexistent/secret\n`,
    expected: /^cctv-agent: SECRET_UNREADABLE: mqtt\.passwordFile: cannot read \/nonexistent\/secret/,
  },
  {
    kind: 'duplicate camera id',
    yaml: () => `cameras:\n${camera}${camera}`,
    expected: /^cctv-agent: CONFIG_INVALID: cameras\.1\.id: duplicate camera id "cam1"/,
  },
  { kind: 'no camera', yaml: () => 'cameras: []\n', expected: /^cctv-agent: CONFIG_INVALID: cameras: at least one camera is needed/ },
  {
    kind: 'port out of range',
    yaml: () => `cameras:\n${camera}mqtt:\n  embeddedBroker:\n    port: 70000\n`,
    expected: /^cctv-agent: CONFIG_INVALID: mqtt\.embeddedBroker\.port: Too big/,
  },
  {
    kind: 'missing video file',
    yaml: () => 'cameras:\n  - id: cam1\n    url: /nonexistent/clip.mp4\n',
    expected: /^cctv-agent: CONFIG_INVALID: cameras\.0\.url: file \/nonexistent\/clip\.mp4 does not exist/,
  },
  { kind: 'YAML syntax', yaml: () => 'cameras:\n  - id: [cam1\n', expected: /^cctv-agent: CONFIG_PARSE: .*config\.yaml:\d+:\d+: / },
  {
    kind: 'unknown environment override',
    yaml: () => `cameras:\n${camera}`,
    env: { CCTV_CAMERAS__0__FPS: '5' },
    expected: /^cctv-agent: CONFIG_UNKNOWN_ENV: CCTV_CAMERAS__0__FPS: "FPS" is not a key of cameras\.0/,
  },
];

describe('bad config: one line naming the key path, exit code 2, nothing started', () => {
  it.each(cases)('$kind', async ({ yaml, env, expected }) => {
    const dir = tempDir();
    const file = path.join(dir, 'config.yaml');
    fs.writeFileSync(file, yaml(dir));
    const agent = spawnAgent(['run', '--config', file], { env: { ...env }, cwd: dir });
    const { code } = await agent.exited;
    const lines = agent.stderr().trimEnd().split('\n');
    expect(lines, agent.stderr()).toHaveLength(1);
    expect(lines[0]).toMatch(expected);
    expect(code).toBe(2);
    expect(agent.logs.filter((line) => line.msg === 'started')).toEqual([]);
    expect(fs.existsSync(path.join(dir, 'data'))).toBe(false);
  });

  it('config check says ok for a good file and fails the same way for a bad one', async () => {
    const dir = tempDir();
    const good = path.join(dir, 'good.yaml');
    fs.writeFileSync(good, `cameras:\n${camera}`);
    const ok = spawnAgent(['config', 'check', good], { cwd: dir });
    expect((await ok.exited).code).toBe(0);
    expect(ok.stdout()).toMatch(/^ok: .*good\.yaml: 1 camera\(s\), model yolox-nano/);
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, `cameras:\n${camera}    sampleFps: -1\n`);
    const failed = spawnAgent(['config', 'check', bad], { cwd: dir });
    expect((await failed.exited).code).toBe(2);
    expect(failed.stderr()).toMatch(/^cctv-agent: CONFIG_INVALID: cameras\.0\.sampleFps:/);
  });

  it('config print shows the effective config with every secret redacted', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'config.yaml');
    fs.writeFileSync(
      file,
      'cameras:\n  - id: cam1\n    url: rtsp://admin:camsecret@192.0.2.10/stream\n    password: other-secret\nmqtt:\n  url: mqtt://b:1883\n  username: edge\n',
    );
    const agent = spawnAgent(['config', 'print', '--config', file], { env: { CCTV_MQTT__PASSWORD: 'env-secret' }, cwd: dir });
    expect((await agent.exited).code).toBe(0);
    const printed = agent.stdout();
    expect(printed).toContain('url: rtsp://***@192.0.2.10/stream');
    expect(printed).toContain('sampleFps: 5');
    for (const secret of ['camsecret', 'other-secret', 'env-secret', 'admin']) expect(printed).not.toContain(secret);
  });
});
