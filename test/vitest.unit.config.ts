import { defineConfig } from 'vitest/config';

// The fast tier: pure logic on fake timers or injected clocks, and real SQLite files in temp
// directories; no broker, camera, ffmpeg child or model session. Files run in parallel, in
// child processes (better-sqlite3 is a native addon: worker threads crash it). Not isolated:
// each child runs several files with their modules loaded once (6-7 s instead of 18), so a
// test must restore what it changes (real timers in afterEach, its own temp directory).
// `npm run test:unit` runs it alone (under 10 s); the test command runs it first.
export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/**/*.unit.test.ts'],
    testTimeout: 10_000,
    reporters: ['default'],
    pool: 'forks',
    isolate: false,
  },
});
