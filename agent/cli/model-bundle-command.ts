import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sha256File } from '../common/checksum.js';
import { loadConfig } from '../config/load.js';
import { AgentError } from '../errors.js';
import { resolveConfiguredModel } from '../inference/model-files.js';
import { ExitCode } from '../lifecycle/exit-codes.js';
import { extractBundle } from '../models/bundle-files.js';
import { generateKey, keyIdOf, loadPrivateKey, loadPublicKey } from '../models/keys.js';
import { packBundle, signBundle } from '../models/pack.js';
import { trustPolicy } from '../models/trust.js';
import { type TrustPolicy, verifyExtracted } from '../models/verify.js';
import { defaultAssetsDir } from '../paths.js';
import type { CliIo } from './io.js';

export const MODEL_BUNDLE_USAGE = `  cctv-agent model keygen --out PATH [--json]      writes PATH.key (private, 0600) and PATH.pub; prints the key id
  cctv-agent model pack --manifest FILE --out BUNDLE.tar [--version V] [--key PATH.key] [--assets DIR] [--json]
  cctv-agent model sign BUNDLE.tar --key PATH.key [--out SIGNED.tar] [--json]
  cctv-agent model verify BUNDLE.tar (--config FILE | --trust PATH.pub ...) [--allow-unsigned] [--json]
`;

const MAX_CLI_BUNDLE_BYTES = 4096 * 1024 * 1024;

function write(io: CliIo, json: boolean | undefined, value: Record<string, unknown>, text: string): void {
  io.out.write(json ? `${JSON.stringify(value, null, 2)}\n` : text);
}

function readKeyFile(file: string | undefined): ReturnType<typeof loadPrivateKey> {
  if (!file) throw new AgentError('USAGE', 'give the private key with --key PATH.key (from `cctv-agent model keygen`)');
  return loadPrivateKey(fs.readFileSync(file, 'utf8'), file);
}

function keygen(argv: string[], io: CliIo): number {
  const { values } = parseArgs({ args: argv, strict: true, options: { out: { type: 'string' }, json: { type: 'boolean' } } });
  if (!values.out) throw new AgentError('USAGE', 'model keygen needs --out PATH (PATH.key and PATH.pub are written)');
  const key = generateKey();
  const keyFile = `${values.out}.key`;
  if (fs.existsSync(keyFile)) throw new AgentError('USAGE', `${keyFile} exists: a key is never overwritten; choose another --out`);
  fs.writeFileSync(keyFile, key.privateKeyPem, { mode: 0o600, flag: 'wx' });
  fs.writeFileSync(`${values.out}.pub`, key.publicKeyPem);
  const config = `modelUpdates:\n  trustedKeys:\n    - id: ${key.keyId}\n      publicKey: ${key.publicKeyRaw}\n`;
  write(
    io,
    values.json,
    { keyId: key.keyId, privateKeyFile: keyFile, publicKeyFile: `${values.out}.pub`, publicKey: key.publicKeyRaw },
    `key ${key.keyId}: private ${keyFile} (keep it off the devices), public ${values.out}.pub\nadd to each device's config:\n${config}`,
  );
  return ExitCode.OK;
}

async function pack(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      manifest: { type: 'string' },
      out: { type: 'string' },
      version: { type: 'string' },
      key: { type: 'string' },
      assets: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (!values.manifest || !values.out) throw new AgentError('USAGE', 'model pack needs --manifest FILE and --out BUNDLE.tar');
  const outcome = await packBundle({
    manifestPath: values.manifest,
    assetsDir: values.assets ?? defaultAssetsDir(),
    out: values.out,
    ...(values.version ? { version: values.version } : {}),
    ...(values.key ? { privateKey: readKeyFile(values.key) } : {}),
  });
  const sha256 = await sha256File(outcome.out);
  write(
    io,
    values.json,
    { ...outcome, sha256 },
    `${outcome.out}: ${outcome.id}@${outcome.version}, ${outcome.bytes} bytes, sha256 ${sha256}, ${outcome.files.length} file(s), ${outcome.keyId ? `signed by ${outcome.keyId}` : 'UNSIGNED'}\n`,
  );
  return ExitCode.OK;
}

async function sign(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: { key: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' } },
  });
  const [bundle] = positionals;
  if (!bundle) throw new AgentError('USAGE', 'model sign needs a bundle file');
  const out = values.out ?? bundle;
  const { keyId } = await signBundle(bundle, readKeyFile(values.key), out, MAX_CLI_BUNDLE_BYTES);
  write(io, values.json, { bundle: out, keyId, sha256: await sha256File(out) }, `${out}: signed by ${keyId}\n`);
  return ExitCode.OK;
}

async function verify(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      trust: { type: 'string', multiple: true },
      'allow-unsigned': { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const [bundle] = positionals;
  if (!bundle) throw new AgentError('USAGE', 'model verify needs a bundle file');
  let policy: TrustPolicy;
  let running: ReturnType<typeof resolveConfiguredModel> | undefined;
  let maxBytes = MAX_CLI_BUNDLE_BYTES;
  if (values.config) {
    const { config } = loadConfig({ file: values.config, env: io.env });
    policy = trustPolicy(config.modelUpdates);
    running = resolveConfiguredModel(config.model.manifest);
    maxBytes = config.modelUpdates.maxBundleMB * 1024 * 1024;
  } else {
    const keys = new Map(
      (values.trust ?? []).map((file) => {
        const key = loadPublicKey(fs.readFileSync(file, 'utf8'), file);
        return [keyIdOf(key), key] as const;
      }),
    );
    policy = { keys, allowUnsigned: values['allow-unsigned'] === true };
  }
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'cctv-verify-'));
  try {
    await extractBundle(bundle, stage, maxBytes);
    const verified = await verifyExtracted(stage, policy, { running, highestVersion: undefined, rollback: false });
    const { id, version, bundle: files } = verified.manifest;
    if (verified.keyId === null) io.err.write('cctv-agent: WARNING: the bundle is UNSIGNED; accepted only because unsigned bundles are allowed\n');
    write(
      io,
      values.json,
      { ok: true, id, version, keyId: verified.keyId, files: files.files, sha256: await sha256File(bundle) },
      `${bundle}: OK, ${id}@${version}, ${verified.keyId ? `signed by ${verified.keyId}` : 'unsigned'}, ${files.files.length} file(s) match their sha256${running ? `, fits the running ${running.manifest.id}` : ''}\n`,
    );
    return ExitCode.OK;
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

/** `model keygen | pack | sign | verify`: the bundle tools of a person preparing an update. */
export async function modelBundleCommand(subcommand: string, argv: string[], io: CliIo): Promise<number> {
  switch (subcommand) {
    case 'keygen':
      return keygen(argv, io);
    case 'pack':
      return pack(argv, io);
    case 'sign':
      return sign(argv, io);
    default:
      return verify(argv, io);
  }
}
