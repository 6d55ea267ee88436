import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The layering docs/architecture.md states, checked on every value import under agent/: a
 * folder may use values (functions, classes, constants) only from the folders listed for it.
 * Type-only imports (`import type`, or every specifier marked `type`) are free: they vanish
 * at compile time and carry no behaviour. errors.ts and paths.ts at the root are leaves anyone
 * may import; daemon.ts, compose/ and cli/ are the composition root and may import anything.
 */
const LEAVES = ['common', 'errors.ts', 'paths.ts'];
const ALLOWED_VALUE_IMPORTS: Record<string, readonly string[]> = {
  common: [],
  config: [],
  log: ['config'],
  assets: ['config'],
  ingest: ['config', 'log'],
  inference: ['ingest', 'config', 'log'],
  storage: ['config', 'log'],
  mqtt: ['storage', 'config', 'log'],
  telemetry: ['storage', 'config', 'log'],
  quantize: ['inference', 'ingest', 'config', 'log'],
  lifecycle: ['config', 'log'],
  monitor: ['storage', 'mqtt', 'config', 'log'],
  drift: ['storage', 'mqtt', 'ingest', 'config', 'log'],
  evidence: ['storage', 'mqtt', 'config', 'log'],
  'self-test': ['mqtt', 'config', 'log'],
  // counting (issue #18)
  tracking: [],
  counting: ['tracking', 'storage', 'mqtt', 'config', 'log'],
  // model updates (agent/models/)
  models: ['inference', 'ingest', 'storage', 'mqtt', 'config', 'log'],
};
const ROOT = new Set(['daemon.ts', 'compose', 'cli']);

const agentDir = path.resolve(new URL('../../agent', import.meta.url).pathname);

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(full) : entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** The folder (or root file) of a path under agent/. */
function unitOf(file: string): string {
  return path.relative(agentDir, file).split(path.sep)[0]!;
}

interface ValueImport {
  from: string;
  to: string;
  line: string;
}

/** Every import or re-export in a file that brings in a value, resolved to a path under agent/. */
function valueImports(file: string, text: string): ValueImport[] {
  const found: ValueImport[] = [];
  for (const match of text.matchAll(/^(import|export)\s+([^;]*?)\s+from\s+'(\.[^']+)'/gm)) {
    const [statement, , clause, target] = match as unknown as [string, string, string, string];
    if (/^type\b/.test(clause)) continue;
    const specifiers = /\{([\s\S]*)\}/.exec(clause)?.[1];
    const bare = clause
      .replace(/\{[\s\S]*\}/, '')
      .replace(/,/g, '')
      .trim();
    const onlyTypes =
      specifiers !== undefined &&
      bare === '' &&
      specifiers
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .every((s) => s.startsWith('type '));
    if (onlyTypes) continue;
    found.push({ from: file, to: path.resolve(path.dirname(file), target), line: statement.replace(/\s+/g, ' ') });
  }
  return found;
}

describe('layering (docs/architecture.md)', () => {
  const files = filesUnder(agentDir);

  it('every folder under agent/ has a rule', () => {
    const units = new Set(files.map(unitOf).filter((unit) => !unit.endsWith('.ts')));
    for (const unit of units)
      expect(
        ROOT.has(unit) || LEAVES.includes(unit) || unit in ALLOWED_VALUE_IMPORTS,
        `agent/${unit}/ has no layering rule in this test and docs/architecture.md`,
      ).toBe(true);
  });

  it('value imports go only where the architecture allows', () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = unitOf(file);
      if (ROOT.has(from)) continue;
      for (const imported of valueImports(file, fs.readFileSync(file, 'utf8'))) {
        const to = unitOf(imported.to.replace(/\.js$/, '.ts'));
        if (to === from || LEAVES.includes(to)) continue;
        const allowed = LEAVES.includes(from) ? [] : (ALLOWED_VALUE_IMPORTS[from] ?? []);
        if (!allowed.includes(to)) violations.push(`agent/${path.relative(agentDir, file)}: ${imported.line}  (${from} -> ${to})`);
      }
    }
    expect(violations, `value imports against the layering:\n${violations.join('\n')}`).toEqual([]);
  });

  it('catches the three imports issue #14 found, were they to come back', () => {
    const check = (file: string, line: string): string | undefined => {
      const from = unitOf(path.join(agentDir, file));
      const [imported] = valueImports(path.join(agentDir, file), line);
      if (imported === undefined) return undefined; // type-only: free
      const to = unitOf(imported.to.replace(/\.js$/, '.ts'));
      return (ALLOWED_VALUE_IMPORTS[from] ?? []).includes(to) ? undefined : `${from} -> ${to}`;
    };
    expect(check('config/references.ts', "import { sourceKind } from '../ingest/ffmpeg-args.js';")).toBe('config -> ingest');
    expect(check('inference/loaded-model.ts', "import { sha256File } from '../assets/verified-write.js';")).toBe('inference -> assets');
    expect(check('mqtt/result-schema.ts', "import { vehicleTypes } from '../inference/manifest.js';")).toBe('mqtt -> inference');
    expect(check('mqtt/result-schema.ts', "import type { VehicleType } from '../inference/manifest.js';")).toBeUndefined();
  });
});
