// Regenerates the parts of the docs that are derived from the code's own schemas:
// the config key table in docs/configuration.md, models/manifest.schema.json and the MQTT
// payload JSON Schemas in docs/mqtt.md.
// Run after ./build.sh: `node scripts/gen-docs.mjs`. test/docs checks they are current.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { configKeysMarkdown } = await import(path.join(root, 'dist/agent/config/describe.js'));
const { configSchema } = await import(path.join(root, 'dist/agent/config/schema.js'));
const { manifestJsonSchema } = await import(path.join(root, 'dist/agent/inference/manifest.js'));
const { mqttDocsMarkdown } = await import(path.join(root, 'dist/agent/compose/mqtt-docs.js'));
const { modelRunOutputMarkdown } = await import(path.join(root, 'dist/agent/cli/model-run-output.js'));

export const BEGIN = '<!-- generated: config keys (scripts/gen-docs.mjs) -->';
export const END = '<!-- end generated -->';
export const BEGIN_MQTT = '<!-- generated: MQTT payload schemas (scripts/gen-docs.mjs) -->';
export const BEGIN_MODEL_RUN = '<!-- generated: model run output (scripts/gen-docs.mjs) -->';

/** Replaces what lies between `begin` and the next END marker in a doc. */
function replaceSection(file, begin, text) {
  const docFile = path.join(root, file);
  const doc = fs.readFileSync(docFile, 'utf8');
  const start = doc.indexOf(begin);
  const end = doc.indexOf(END, start);
  if (start < 0 || end < start) throw new Error(`${docFile} lacks the generated-section markers`);
  fs.writeFileSync(docFile, `${doc.slice(0, start + begin.length)}\n${text}\n${doc.slice(end)}`);
}

replaceSection('docs/configuration.md', BEGIN, configKeysMarkdown(configSchema));
replaceSection('docs/mqtt.md', BEGIN_MQTT, mqttDocsMarkdown());
replaceSection('docs/cli.md', BEGIN_MODEL_RUN, modelRunOutputMarkdown());
fs.writeFileSync(path.join(root, 'models/manifest.schema.json'), `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`);
console.log('gen-docs: docs/configuration.md, docs/mqtt.md, docs/cli.md and models/manifest.schema.json updated');
