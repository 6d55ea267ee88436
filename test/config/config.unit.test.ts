import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../agent/config/load.js';
import { redactConfig, redactUrl, SecretScrubber } from '../../agent/config/redact.js';
import { configSchema } from '../../agent/config/schema.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-config-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

const minimal = 'cameras:\n  - id: cam1\n    url: rtsp://10.0.0.5/stream\n';

function problemsOf(run: () => unknown): string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('config loading', () => {
  it('fills every default from the schema', () => {
    const { config } = loadConfig({ file: write('a.yaml', minimal), env: {} });
    expect(config.cameras[0]).toMatchObject({ id: 'cam1', sampleFps: 5, transport: 'tcp', loop: true });
    expect(config.mqtt).toMatchObject({ enabled: true, topicPrefix: 'cctv', embeddedBroker: { port: 1883 } });
    expect(config.storage.flushIntervalMs).toBe(250);
  });

  it('applies environment overrides named from schema paths, converted by type', () => {
    const env = {
      CCTV_MQTT__URL: 'mqtt://broker:1883',
      CCTV_CAMERAS__0__SAMPLE_FPS: '2.5',
      CCTV_CAMERAS__0__LOOP: 'false',
      CCTV_INFERENCE__EXECUTION_PROVIDERS: '["cpu"]',
      CCTV_DEVICE_ID: 'edge-7',
    };
    const loaded = loadConfig({ file: write('a.yaml', minimal), env });
    expect(loaded.config.mqtt.url).toBe('mqtt://broker:1883');
    expect(loaded.config.cameras[0]!.sampleFps).toBe(2.5);
    expect(loaded.config.cameras[0]!.loop).toBe(false);
    expect(loaded.config.deviceId).toBe('edge-7');
    expect(loaded.envApplied).toContain('CCTV_MQTT__URL');
  });

  it("runtime.heapGrowingPercent: 100 unless set, 0 for V8's own growth, out of range named", () => {
    expect(loadConfig({ file: write('a.yaml', minimal), env: {} }).config.runtime.heapGrowingPercent).toBe(100);
    expect(loadConfig({ file: write('b.yaml', minimal), env: { CCTV_RUNTIME__HEAP_GROWING_PERCENT: '0' } }).config.runtime.heapGrowingPercent).toBe(0);
    const problems = problemsOf(() => loadConfig({ file: write('c.yaml', `${minimal}runtime: { heapGrowingPercent: 500 }\n`), env: {} }));
    expect(problems.join('\n')).toContain('runtime.heapGrowingPercent');
  });

  it('sampleFps takes "null" from the environment (every frame)', () => {
    const { config } = loadConfig({ file: write('a.yaml', minimal), env: { CCTV_CAMERAS__0__SAMPLE_FPS: 'null' } });
    expect(config.cameras[0]!.sampleFps).toBeNull();
  });

  it('rejects an unknown environment variable under the prefix, naming it', () => {
    expect(() => loadConfig({ file: write('a.yaml', minimal), env: { CCTV_MQTT__PASWORD: 'x' } })).toThrow(
      /CCTV_MQTT__PASWORD: "PASWORD" is not a key of mqtt/,
    );
  });

  it('reads secrets from files and reports them for scrubbing', () => {
    const secret = write('mqtt.pass', 'hunter22\n');
    const loaded = loadConfig({ file: write('a.yaml', `${minimal}mqtt:\n  url: mqtt://b:1883\n  username: u\n  passwordFile: ${secret}\n`), env: {} });
    expect(loaded.config.mqtt.password).toBe('hunter22');
    expect(loaded.secrets).toContain('hunter22');
  });

  it('one line per problem, each naming the key path, the value and what is allowed', () => {
    const file = write('bad.yaml', 'cameras:\n  - id: cam1\n    url: rtsp://h/s\n    sampleFps: -1\n    transport: carrier-pigeon\n    colour: red\n');
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    expect(problems).toHaveLength(3);
    expect(problems.find((p) => p.startsWith('cameras.0.sampleFps:'))).toMatch(/>0.*got -1/);
    expect(problems.find((p) => p.startsWith('cameras.0.transport:'))).toMatch(/"tcp"\|"udp"\|"auto".*got "carrier-pigeon"/);
    expect(problems.find((p) => p.startsWith('cameras.0.colour:'))).toMatch(/unknown key \(allowed here: id, url,/);
  });

  it('rejects duplicate camera ids and a password given twice', () => {
    const file = write('dup.yaml', 'cameras:\n  - {id: a, url: rtsp://h/1, password: x1x, passwordFile: /x}\n  - {id: a, url: rtsp://h/2}\n');
    const problems = problemsOf(() => loadConfig({ file, env: {} }));
    expect(problems).toContain('cameras.1.id: duplicate camera id "a"');
    expect(problems).toContain('cameras.0.passwordFile: give password or passwordFile, not both');
  });

  it('a YAML syntax error names the file, line and column', () => {
    const file = write('syntax.yaml', 'cameras:\n  - id: [unclosed\n');
    expect(problemsOf(() => loadConfig({ file, env: {} }))[0]).toMatch(/syntax\.yaml:\d+:\d+: /);
  });
});

describe('redaction', () => {
  it('masks URL credentials and schema-marked secrets', () => {
    expect(redactUrl('rtsp://admin:s3cret@cam/stream')).toBe('rtsp://***@cam/stream');
    const { config } = loadConfig({
      file: write(
        'a.yaml',
        'cameras:\n  - {id: c, url: "rtsp://admin:s3cret@cam/x", password: "pw-123"}\nmqtt: {url: "mqtt://u:brokerpw@b:1883", password: "pw-456"}\n',
      ),
      env: {},
    });
    const printed = JSON.stringify(redactConfig(config, configSchema));
    for (const secret of ['s3cret', 'pw-123', 'pw-456', 'brokerpw', 'admin']) expect(printed).not.toContain(secret);
  });

  it('the scrubber masks known secrets anywhere in a line, URL-encoded too', () => {
    const scrubber = new SecretScrubber();
    scrubber.add('p@ss word');
    expect(scrubber.scrub('{"msg":"failed with p@ss word and p%40ss%20word"}')).toBe('{"msg":"failed with *** and ***"}');
  });
});

describe('errors never echo secrets', () => {
  it('a bad secret value or a URL with credentials is not shown back', () => {
    const file = write('leak.yaml', 'cameras:\n  - {id: c, url: "rtsp://adm:topsecret@:554/x", password: 12345}\n');
    const problems = problemsOf(() => loadConfig({ file, env: {} })).join('\n');
    expect(problems).toMatch(/cameras\.0\.password: .*got "\*\*\*"/);
    expect(problems).not.toContain('topsecret');
    expect(problems).not.toContain('12345');
  });
});
