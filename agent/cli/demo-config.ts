import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { defaultAssetsDir } from '../paths.js';

/** The first line of a config file the demo wrote; such a file is the demo's to refresh. */
export const DEMO_CONFIG_MARK = '# Written by `cctv-agent demo`';

/** The demo: the real highway clip, looped like a live camera, with the embedded broker. */
export function demoBaseConfig(assetsDir: string = defaultAssetsDir()): Record<string, unknown> {
  return {
    cameras: [{ id: 'highway-demo', url: path.join(assetsDir, 'highway-cctv-320x240.mp4'), loop: true, realtime: true, sampleFps: 5 }],
  };
}

/**
 * After `npm run demo`, the commands a user tries next (`status`, `telemetry`, `config print`)
 * look for a config in the working directory: the demo writes its own there, as
 * ./cctv-agent.yaml, so they find the demo's data directory. It never overwrites a file it did
 * not write. Returns the file written, or undefined when it left things alone.
 */
export function writeDemoConfig(usedFile: string | undefined, base: Record<string, unknown>, dir: string = process.cwd()): string | undefined {
  const file = path.join(dir, 'cctv-agent.yaml');
  if (usedFile !== undefined && path.resolve(usedFile) !== file) return undefined;
  if (fs.existsSync(file) && !fs.readFileSync(file, 'utf8').startsWith(DEMO_CONFIG_MARK)) return undefined;
  const text = [
    `${DEMO_CONFIG_MARK}: the demo's camera (the highway clip, looped like a live camera);`,
    '# no mqtt.url, so an embedded broker listens on 127.0.0.1:1883; data in ./data.',
    '# cctv-agent status, telemetry and config print read it from here. Edit it for a real',
    '# camera (docs/configuration.md); once edited, the demo leaves it alone.',
    stringify(base).trimEnd(),
    '',
  ].join('\n');
  fs.writeFileSync(`${file}.part`, text);
  fs.renameSync(`${file}.part`, file);
  return file;
}
