// Runs a TypeScript entry point (benchmarks) through vite's module runner, which vitest
// already brings: no extra dependency, same module resolution as the tests.
// Usage: node scripts/run-ts.mjs bench/inference.ts
import path from 'node:path';
import { runnerImport } from 'vite';

const entry = process.argv[2];
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs FILE.ts');
  process.exit(2);
}
await runnerImport(path.resolve(entry), { configFile: false, logLevel: 'warn' });
