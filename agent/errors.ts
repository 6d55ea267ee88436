/**
 * Every error a user can meet carries one of these codes, and each code has a one-line fix.
 * Code paths match on `code`, never on message text. docs/errors.md lists the same table
 * (a test keeps the two in step).
 */
export const errorFixes = {
  USAGE: 'run `cctv-agent help` for the commands and their options',
  CONFIG_NOT_FOUND: 'pass --config FILE, or create one of the files in the default search path',
  CONFIG_PARSE: 'fix the YAML syntax at the line and column given',
  CONFIG_INVALID: 'change the named key to an allowed value (see docs/configuration.md)',
  CONFIG_UNKNOWN_ENV: 'remove the variable or correct its name (CCTV_ + schema path in UPPER_SNAKE, "__" between levels)',
  SECRET_UNREADABLE: 'make the secret file readable by the agent, or give the secret in the config or environment',
  MODEL_FILE_MISSING: 'run `npm run assets` (or `cctv-agent assets fetch`), or point model.manifest at a manifest whose file exists',
  MODEL_MANIFEST_INVALID: 'fix the manifest key named (see docs/model-manifest.md)',
  MODEL_LOAD_FAILED: 'the file is not a loadable ONNX model: fetch it again and check its sha256',
  MODEL_MISMATCH: 'make the manifest agree with the model (input name, shape, dtype, output shape)',
  IMAGE_UNREADABLE: 'give `model run` an image file ffmpeg can decode (JPEG, PNG, BMP, WebP) or a video (its first frame is used)',
  MODEL_NOT_FOUND:
    'name a model that exists: `cctv-agent model run --model ID` takes the id of a shipped or installed manifest (models/manifests, the assets directory), or give --manifest FILE',
  INFERENCE_FAILED:
    'onnxruntime could not run a frame (see the message): the agent goes on with the next frames; if it repeats, swap back to a known-good model',
  FFMPEG_NOT_FOUND: 'install ffmpeg or set ffmpeg.path to an executable ffmpeg',
  FFMPEG_PROBE_FAILED: 'ffmpeg.path must point at a working ffmpeg binary (`ffmpeg -version` must succeed)',
  SOURCE_UNAUTHORIZED: 'check the camera username and password',
  SOURCE_NOT_FOUND: 'check the camera URL path or the file path',
  SOURCE_REFUSED: 'check the camera host and port, and that the camera is up',
  SOURCE_TIMEOUT: 'check the network path to the camera',
  SOURCE_INVALID_DATA: 'the camera sends a stream ffmpeg cannot decode: check the codec and the URL',
  SOURCE_ENDED: 'the source ended (a file played once); set loop: true to replay it',
  SOURCE_FAILED:
    'ffmpeg exited with an error: see the ffmpeg lines logged before it (module ingest); when there are none, try the URL by hand: ffmpeg -i URL -frames:v 1 -f null -',
  SOURCE_STALLED: 'the camera stays connected but sends no frames: check the camera; the agent restarts the stream',
  CAMERA_HOST_UNRESOLVED:
    "the camera URL's host name does not resolve: check the name, /etc/hosts and the DNS servers, or give the camera's IP address; the agent keeps retrying with backoff",
  FFMPEG_CRASHED:
    "ffmpeg died by a signal (a crash, e.g. SIGSEGV), usually a bug of that ffmpeg build with this stream: install Debian's ffmpeg (apt install ffmpeg; the agent prefers /usr/bin/ffmpeg) or set ffmpeg.path to another build; the agent retries with backoff",
  DECODE_SKIP_TOO_SPARSE:
    "the camera's decodeSkip mode would leave fewer frames than sampleFps (keyframes too far apart, or too few reference frames): the agent decodes with the next mode that keeps the rate; set decodeSkip: auto, lower sampleFps, or shorten the camera's keyframe interval (GOP)",
  DECODE_PROBE_FAILED:
    "the short probe of the camera's stream (frame rate, keyframe interval) failed, so decodeSkip cannot be applied safely: the camera is decoded in full; it is probed again after the next reconnection",
  CAMERA_CONFIG_REJECTED: "ffmpeg rejected this camera's settings (hwaccel, URL scheme, region): fix the camera config; it is not retried until then",
  STORAGE_OPEN_FAILED: 'make dataDir writable by the agent and check free disk space',
  STORAGE_WRITE_FAILED: 'check free disk space and the data directory',
  STORAGE_DISK_FULL: 'free space on the data disk or lower storage.retention.maxDatabaseMB; the agent prunes the oldest data and keeps running degraded',
  STORAGE_READ_FAILED: "check that dataDir points at an agent's data directory and that its database is readable",
  MQTT_CONNECT_FAILED: 'check mqtt.url, credentials and TLS settings; the agent keeps retrying',
  MQTT_AUTH_FAILED: 'check mqtt.username and mqtt.password (or passwordFile); the agent keeps retrying with backoff',
  MQTT_TLS_FAILED: 'check mqtt.tls.caFile (it must have signed the broker certificate) and the client certificate and key',
  COMMAND_TOO_LARGE: 'send a smaller command payload (mqtt.commands.maxPayloadBytes)',
  COMMAND_INVALID_JSON: 'send the command payload as one UTF-8 JSON object',
  COMMAND_INVALID: 'fix the named field of the command payload (see docs/mqtt.md)',
  COMMAND_UNKNOWN: 'use one of the commands listed in docs/mqtt.md',
  COMMAND_FAILED: "the command was valid but could not be carried out: see the reply's message",
  FEEDBACK_UNKNOWN_RESULT:
    'the feedback names a result this device does not hold (wrong device, or the result was pruned): send it to the device that published the result, within storage.retention.resultsDays',
  FEEDBACK_DETECTION_OUT_OF_RANGE: "the detection index is past the result's vehicles: indexes count from 0 in the result's vehicles array",
  FEEDBACK_INVALID: 'fix the named feedback item (a verdict needs the fields docs/monitoring.md lists, e.g. wrong-type needs trueType)',
  // Golden-sample self-test (agent/self-test/)
  SELF_TEST_FILE_CHANGED:
    'the model file on disk is not the one loaded: restore it (fetch the model again, or push a signed bundle), since a restart would load the changed file',
  SELF_TEST_MISMATCH:
    'the live model no longer finds what its golden samples expect: check the runtime and the CPU (cctv-agent model run on the golden images), or swap back to a known-good model',
  SELF_TEST_UNAVAILABLE: "the model's golden samples cannot be run: fix the manifest's golden.file and the images it names",
  RETRAIN_NOT_FOUND: 'name a retrain request this device raised (its requestId, from <prefix>/<deviceId>/retrain or `cctv-agent monitor`)',
  EVIDENCE_NOT_FOUND:
    'name an evidence sample this device holds (`cctv-agent evidence list` or the evidence-list command); it may have been pruned by the quota or retention',
  EVIDENCE_EXPORT_FAILED: 'the export directory could not be written: check its path, permissions and free space',
  // counting (issue #18)
  COUNTS_UNKNOWN_TARGET: "name a camera, line and direction label this device counts (the cameras' `lines` in the config; docs/counting.md)",
  COUNTS_NO_INTERVALS:
    "the agent has no closed counting interval inside the period: give from and to on interval boundaries (counting.intervalSeconds) over a time the camera ran, and ask after the interval's end plus counting.graceSeconds",
  MQTT_EMBEDDED_PORT_IN_USE: 'another broker holds the port: set mqtt.url to use it, or change mqtt.embeddedBroker.port',
  ASSET_UNAVAILABLE: 'set CCTV_ASSET_MIRROR to a directory holding the file, or follow the catalog entry\'s "obtain" text',
  ASSET_HASH_MISMATCH: 'the file differs from the catalog: delete it and fetch again from a trusted source',
  ASSET_DERIVE_FAILED:
    'the asset could not be made from its source with ffmpeg (see the message): check the source file and the disk space, or take the asset from a mirror (CCTV_ASSET_MIRROR)',
  ASSET_DOWNLOAD_FAILED: 'check network access to the upstream URL, or use a mirror directory (CCTV_ASSET_MIRROR)',
  QUANTIZE_MODEL_INVALID: 'give `model quantize` a float32 ONNX model file (the upstream export, not an already quantized one)',
  QUANTIZE_UNSUPPORTED_OP: 'the model has an op the quantizer does not handle (named in the message): re-export it without that op, or at opset 13 or later',
  QUANTIZE_NO_FRAMES: 'the calibration source gave no frames: check the folder holds images, the video decodes, or the camera sends pictures',
  QUANTIZE_UNKNOWN_LAYER: 'use a layer name the model has (`cctv-agent model layers MODEL` lists them)',
  QUANTIZE_SOURCE_FAILED: 'the calibration source could not be read: check its path or camera id and the ffmpeg message',
  MODEL_BATCH_AXIS_UNSAFE:
    'the model has a node that fixes or mixes the batch dimension (named in the message): it cannot be given a batch axis safely; re-export it with a dynamic batch',
  // Model updates (agent/models/, docs/model-updates.md)
  MODEL_BUNDLE_INVALID:
    'the bundle is not a model bundle (a tar with manifest.json, its signature and the files it names): pack it with `cctv-agent model pack`',
  MODEL_BUNDLE_UNSAFE_PATH:
    'the bundle holds an entry with "..", an absolute path, a link or a device: it is refused; pack it again with `cctv-agent model pack`',
  MODEL_BUNDLE_TOO_LARGE: 'the bundle is larger than modelUpdates.maxBundleMB: raise the limit knowingly or ship a smaller bundle',
  MODEL_BUNDLE_TRUNCATED: 'the bundle or one of its files is shorter or longer than announced: send or download it again',
  MODEL_BUNDLE_HASH_MISMATCH:
    'a file of the bundle does not match its sha256 in the manifest (or the bundle its announced sha256): send it again from the source; if it repeats, it was altered',
  MODEL_BUNDLE_UNSIGNED: 'sign the bundle (`cctv-agent model sign`) with a key listed in modelUpdates.trustedKeys; only a lab sets modelUpdates.allowUnsigned',
  MODEL_BUNDLE_SIGNATURE_INVALID:
    'the signature does not match the manifest: the manifest was changed after signing, or signed with another key; sign it again',
  MODEL_BUNDLE_KEY_UNKNOWN: 'add the public key (`cctv-agent model keygen` prints it) to modelUpdates.trustedKeys, or sign with a trusted key',
  MODEL_INPUT_INCOMPATIBLE:
    "the new model's input (name, size, layout, dtype) differs from the running one: the camera pipeline would need a restart; ship a model with the same input",
  MODEL_LABELS_INCOMPATIBLE: "the new model's label count differs from the running one's, or its vehicleTypes name labels it lacks: fix the manifest's labels",
  MODEL_DOWNGRADE: 'the version is not newer than one this device already ran: bump the version, or go back with `cctv-agent model rollback`',
  MODEL_VERSION_NOT_FOUND: 'name a version the registry holds (`cctv-agent model list`)',
  MODEL_UPDATE_BUSY: 'another update of this model is in flight: wait for it to finish (see <prefix>/<deviceId>/model/state)',
  MODEL_PUSH_CHUNK_INVALID: 'a chunk failed its checksum, is out of range or came for another push: the sender resends it',
  MODEL_PUSH_CHUNK_MISSING: 'the push ended with chunks missing: push again, only the missing chunks are sent',
  MODEL_PUSH_ABANDONED: 'no chunk arrived within modelUpdates.push.idleTimeoutSeconds: push again to resume',
  MODEL_PULL_HTTP_STATUS: 'the server answered the download with an error status (e.g. 404): check the URL in the announcement or command',
  MODEL_PULL_FAILED: 'the download could not reach the server or broke off: check the URL and the network; the next attempt resumes from the .part',
  MODEL_PULL_TIMEOUT: 'the download stalled for modelUpdates.pull.timeoutSeconds: check the network and the server; the next attempt resumes',
  MODEL_KEY_INVALID: 'give a key file written by `cctv-agent model keygen` (PEM ed25519)',
  STARTUP_ABORTED: 'shutdown was requested during startup; nothing to fix',
  STARTUP_FAILED: 'see the error of the subsystem that failed to start',
  SHUTDOWN_INCOMPLETE: 'a subsystem did not stop in time: see the log for which one',
  INTERNAL: 'a bug: please report it with the log lines around it',
} as const;

export type ErrorCode = keyof typeof errorFixes;

export class AgentError extends Error {
  readonly code: ErrorCode;
  /** Several problems of one kind (a config with three bad keys): one line each for a person. */
  readonly problems: readonly string[] | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; problems?: readonly string[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AgentError';
    this.code = code;
    this.problems = options?.problems;
  }

  get fix(): string {
    return errorFixes[this.code];
  }
}

export function isAgentError(value: unknown): value is AgentError {
  return value instanceof AgentError;
}

/** Reads `code` from errors thrown by Node and native libraries (ENOENT, SQLITE_FULL, ...). */
export function systemErrorCode(value: unknown): string | undefined {
  if (typeof value === 'object' && value !== null && 'code' in value) {
    const code = (value as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

export function errorMessage(value: unknown): string {
  return value instanceof Error ? value.message : String(value);
}

/** One line per problem, for a person: `cctv-agent: CODE: key.path: what is wrong (fix: ...)`. */
export function errorLines(error: unknown): string[] {
  if (error instanceof AgentError && error.problems !== undefined) return error.problems.map((problem) => `cctv-agent: ${error.code}: ${problem}`);
  if (error instanceof AgentError) return [`cctv-agent: ${error.code}: ${error.message} (fix: ${error.fix})`];
  return [`cctv-agent: INTERNAL: ${errorMessage(error)}`];
}
