import { defineConfig } from 'vitest/config';

// Integration tests start real brokers, RTSP servers and ffmpeg: the machine has 2 cores,
// so files run one at a time and each test has a generous timeout. The fast unit tier
// (*.unit.test.ts) has its own config, test/vitest.unit.config.ts.
export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/**/*.test.ts'],
    exclude: ['test/**/*.unit.test.ts', '**/node_modules/**'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    pool: 'forks',
  },
});
