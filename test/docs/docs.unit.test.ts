import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { configKeysMarkdown } from '../../agent/config/describe.js';
import { configSchema } from '../../agent/config/schema.js';
import { errorFixes } from '../../agent/errors.js';
import { manifestJsonSchema } from '../../agent/inference/manifest.js';
import { mqttDocsMarkdown } from '../../agent/compose/mqtt-docs.js';
import { deviceTopics } from '../../agent/mqtt/topics.js';
import { packageRoot } from '../../agent/paths.js';

const read = (file: string): string => fs.readFileSync(path.join(packageRoot(), file), 'utf8');
const regenerate = 'run ./build.sh && node scripts/gen-docs.mjs';

describe('docs stay true to the code', () => {
  it('docs/configuration.md lists every config key as the schema has it', () => {
    expect(read('docs/configuration.md'), regenerate).toContain(configKeysMarkdown(configSchema));
  });

  it('models/manifest.schema.json is the manifest schema', () => {
    expect(JSON.parse(read('models/manifest.schema.json')), regenerate).toEqual(JSON.parse(JSON.stringify(manifestJsonSchema())));
  });

  it('docs/errors.md lists every error code with its fix', () => {
    const doc = read('docs/errors.md');
    for (const [code, fix] of Object.entries(errorFixes)) {
      expect(doc).toContain(`| \`${code}\` |`);
      expect(doc).toContain(fix);
    }
  });

  it('docs/mqtt.md documents the topics the agent publishes', () => {
    const doc = read('docs/mqtt.md');
    const topics = deviceTopics('<prefix>', '<deviceId>');
    for (const topic of [
      topics.availability,
      topics.results,
      topics.telemetry,
      topics.events,
      topics.quality,
      topics.alerts,
      topics.retrain,
      topics.command('<name>'),
      topics.commandReply('<name>'),
    ]) {
      expect(doc).toContain(`\`${topic}\``);
    }
  });

  it('docs/mqtt.md carries the JSON Schemas of the payloads as the code has them', () => {
    expect(read('docs/mqtt.md'), regenerate).toContain(mqttDocsMarkdown());
  });

  it('docs/cli.md carries the JSON Schema of `model run --json`', async () => {
    const { modelRunOutputMarkdown } = await import('../../agent/cli/model-run-output.js');
    expect(read('docs/cli.md'), regenerate).toContain(modelRunOutputMarkdown());
  });

  it('every shipped manifest is valid', async () => {
    const { readManifest } = await import('../../agent/inference/model-files.js');
    const dir = path.join(packageRoot(), 'models', 'manifests');
    for (const file of fs.readdirSync(dir)) expect(readManifest(path.join(dir, file)).id).toBeTruthy();
  });
});

describe("the example errors in docs/configuration.md are the agent's own", () => {
  it('config check prints exactly the documented lines', async () => {
    const { main } = await import('../../agent/cli/main.js');
    const dir = fs.mkdtempSync(path.join((await import('node:os')).tmpdir(), 'cctv-docs-errors-'));
    const check = async (yaml: string): Promise<string> => {
      const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
      fs.writeFileSync(file, yaml);
      let err = '';
      const io = {
        out: { write: () => true },
        err: {
          write: (text: string) => {
            err += text;
            return true;
          },
        },
        env: {},
      } as never;
      expect(await main(['config', 'check', file], io)).toBe(2);
      return err;
    };
    const documented = read('docs/configuration.md')
      .split('\n')
      .filter((line) => line.startsWith('cctv-agent: '));
    expect(documented).toHaveLength(4);
    const camera = 'cameras:\n  - id: north\n    url: rtsp://192.0.2.10/s\n';
    const printed = [
      await check(`${camera}    sampleFps: -5\nmqtt:\n  urll: mqtt://x\n`),
      await check(`${camera}mqtt:\n  passwordFile: /run/secrets/mqtt\n`),
      await check(`${camera}model:\n  manifest: /etc/cctv-agent/model.json\n`),
    ].join('');
    for (const line of documented) expect(printed).toContain(line);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
