import type { ErrorCode } from '../errors.js';

/**
 * ffmpeg reports failures only as text on stderr, so this is the one place that reads
 * ffmpeg's words; everything downstream matches on the returned code.
 */
const PATTERNS: Array<[RegExp, ErrorCode]> = [
  // Our own argv or the camera's settings are wrong: retrying cannot help.
  [
    /Unrecognized option|Option \S+ not found|No such filter|Error (?:parsing|initializing) (?:filter|a simple filtergraph)|Unknown decoder|Protocol not found|Device creation failed|Failed setup for format/i,
    'CAMERA_CONFIG_REJECTED',
  ],
  [/401 Unauthorized|403 Forbidden|authorization failed/i, 'SOURCE_UNAUTHORIZED'],
  [/404 Not Found|No such file or directory|Server returned 4\d\d/i, 'SOURCE_NOT_FOUND'],
  [/Connection refused/i, 'SOURCE_REFUSED'],
  [/timed out|Connection timed out|No route to host|Network is unreachable/i, 'SOURCE_TIMEOUT'],
  [/Invalid data found|could not find codec parameters|moov atom not found|Error while decoding/i, 'SOURCE_INVALID_DATA'],
];

export function classifyStderrLine(line: string): ErrorCode | undefined {
  for (const [pattern, code] of PATTERNS) if (pattern.test(line)) return code;
  return undefined;
}

/** "Stream #0:0: Video: h264 (High) ..., yuv420p(progressive), 320x240 [SAR 1:1 DAR 4:3], 25 fps" */
export function parseInputVideoSize(line: string): { width: number; height: number } | undefined {
  const match = /Stream #\d+:\d+.*?: Video: .*?, (\d{2,5})x(\d{2,5})\b/.exec(line);
  return match ? { width: Number(match[1]), height: Number(match[2]) } : undefined;
}
