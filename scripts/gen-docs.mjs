// Regenerates the parts of the docs that are derived from the code's own schemas:
// the config key table in docs/configuration.md and models/manifest.schema.json.
// Run after ./build.sh: `node scripts/gen-docs.mjs`. test/docs checks they are current.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { configKeysMarkdown } = await import(path.join(root, 'dist/agent/config/describe.js'));
const { configSchema } = await import(path.join(root, 'dist/agent/config/schema.js'));
const { manifestJsonSchema } = await import(path.join(root, 'dist/agent/inference/manifest.js'));

export const BEGIN = '<!-- generated: config keys (scripts/gen-docs.mjs) -->';
export const END = '<!-- end generated -->';

const docFile = path.join(root, 'docs/configuration.md');
const doc = fs.readFileSync(docFile, 'utf8');
const start = doc.indexOf(BEGIN);
const end = doc.indexOf(END);
if (start < 0 || end < start) throw new Error(`${docFile} lacks the generated-section markers`);
fs.writeFileSync(docFile, `${doc.slice(0, start + BEGIN.length)}\n${configKeysMarkdown(configSchema)}\n${doc.slice(end)}`);
fs.writeFileSync(path.join(root, 'models/manifest.schema.json'), `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`);
console.log('gen-docs: docs/configuration.md and models/manifest.schema.json updated');
