/**
 * A real Mosquitto 2.x broker for tests: `/usr/sbin/mosquitto -c <tmp conf>`
 * on a free port bound to 127.0.0.1, with a throwaway temp directory holding
 * its config, password file and (TLS variants) a CA, server and client
 * certificate. Persistence is off; the broker logs to stderr, captured in
 * memory (logs()).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { canConnect, freePort } from './free-port.js';
import { spawnManaged, waitUntil, type ManagedProcess } from './managed-process.js';

const execFileAsync = promisify(execFile);

const MOSQUITTO = '/usr/sbin/mosquitto';
const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';
const OPENSSL = 'openssl';
const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

export type MosquittoVariant = 'plain' | 'password' | 'tls' | 'tls-password';

export interface MosquittoOptions {
  /**
   * plain: anonymous MQTT; password: MQTT with username/password required;
   * tls: MQTT over TLS, anonymous; tls-password: MQTT over TLS with username/password.
   * Default 'plain'.
   */
  variant?: MosquittoVariant;
  /** Defaults to "cctv-test" for the password variants. */
  username?: string;
  /** Defaults to a random password for the password variants. */
  password?: string;
  /** TLS variants: require clients to present a certificate signed by the CA (default false). */
  requireClientCert?: boolean;
  /** Log every MQTT packet (log_type all) instead of the default error..information levels. */
  verbose?: boolean;
  /** Extra lines appended to mosquitto.conf. */
  extraConfig?: string[];
}

/** Options to spread into mqtt.connect()/connectAsync() for this broker. */
export interface MosquittoClientOptions {
  username?: string;
  password?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized?: boolean;
}

export interface MosquittoHandle {
  variant: MosquittoVariant;
  /** mqtt://127.0.0.1:PORT, or mqtts://localhost:PORT for the TLS variants. */
  url: string;
  /** Host name in url: 127.0.0.1, or localhost for TLS (the certificate has both as SANs). */
  host: string;
  port: number;
  /** Temporary directory (config, passwords, certificates); removed by stop(). */
  dir: string;
  /** TLS: the throwaway CA certificate that signed the server and client certificates. */
  caFile?: string;
  /** TLS: a client certificate (CN cctv-test-client) signed by the CA. */
  certFile?: string;
  /** TLS: the client certificate's private key. */
  keyFile?: string;
  username?: string;
  password?: string;
  /** Broker pid, or undefined while stopped. */
  pid(): number | undefined;
  isRunning(): boolean;
  /** Reads caFile/certFile/keyFile and returns ready-to-use mqtt.js options (with credentials). */
  clientOptions(opts?: { withClientCert?: boolean }): Promise<MosquittoClientOptions>;
  /** SIGTERM, wait for exit up to 5 s, then SIGKILL; removes the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** Stops the broker (keeping its files) and starts it again on the same port. */
  restart(): Promise<void>;
  /** Simulates a crash: SIGKILL, no restart. restart() brings it back. */
  kill(): Promise<void>;
  /** An orderly stop (SIGTERM: persistence is saved) that keeps the files; restart() brings it back. */
  pause(): Promise<void>;
  /** Everything the broker (all its incarnations) wrote to stderr/stdout. */
  logs(): string;
}

const DIR_PREFIX = 'cctv-mosquitto-';
const OWNER_FILE = 'owner.pid';
const liveDirs = new Set<string>();
let exitHookInstalled = false;

/** Temp dirs must not outlive the worker, even when a test forgets stop(). */
function trackDir(dir: string): void {
  liveDirs.add(dir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temp dirs left by workers that were SIGKILLed (their owner pid is gone). */
function sweepStaleDirs(): void {
  let entries: string[];
  try {
    entries = readdirSync(os.tmpdir()).filter((e) => e.startsWith(DIR_PREFIX));
  } catch {
    return;
  }
  for (const entry of entries) {
    const dir = path.join(os.tmpdir(), entry);
    try {
      const owner = Number(readFileSync(path.join(dir, OWNER_FILE), 'utf8').trim());
      if (owner > 0 && owner !== process.pid && !pidAlive(owner)) rmSync(dir, { recursive: true, force: true });
    } catch {
      /* not ours, half-written or already gone */
    }
  }
}

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync(cmd, args, { cwd, timeout: 20_000 });
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

interface TlsFiles {
  caFile: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** Throwaway CA + server cert (CN localhost, SAN localhost + 127.0.0.1) + client cert, EC P-256. */
async function makeCertificates(dir: string): Promise<TlsFiles> {
  const f = (name: string): string => path.join(dir, name);
  const days = '30';
  await run(OPENSSL, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f('ca.key')], dir);
  await run(
    OPENSSL,
    [
      'req',
      '-x509',
      '-new',
      '-key',
      f('ca.key'),
      '-sha256',
      '-days',
      days,
      '-subj',
      '/CN=cctv-test-ca',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      f('ca.crt'),
    ],
    dir,
  );
  const leaf = async (name: string, cn: string, ext: string[]): Promise<void> => {
    await run(OPENSSL, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', f(`${name}.key`)], dir);
    await run(OPENSSL, ['req', '-new', '-key', f(`${name}.key`), '-subj', `/CN=${cn}`, '-out', f(`${name}.csr`)], dir);
    await writeFile(f(`${name}.ext`), `${ext.join('\n')}\n`);
    await run(
      OPENSSL,
      [
        'x509',
        '-req',
        '-in',
        f(`${name}.csr`),
        '-CA',
        f('ca.crt'),
        '-CAkey',
        f('ca.key'),
        '-set_serial',
        `0x${randomBytes(8).toString('hex')}`,
        '-days',
        days,
        '-sha256',
        '-extfile',
        f(`${name}.ext`),
        '-out',
        f(`${name}.crt`),
      ],
      dir,
    );
  };
  await leaf('server', 'localhost', [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ]);
  await leaf('client', 'cctv-test-client', ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth']);
  return {
    caFile: f('ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
  };
}

function configText(opts: { port: number; passwordFile?: string; tls?: TlsFiles; requireClientCert: boolean; verbose: boolean; extra: string[] }): string {
  const lines = [
    '# generated by test/support/mosquitto.ts',
    'per_listener_settings false',
    'persistence false',
    'log_dest stderr',
    'log_timestamp true',
    'log_timestamp_format %H:%M:%S',
    'connection_messages true',
  ];
  if (opts.verbose) lines.push('log_type all');
  else lines.push('log_type error', 'log_type warning', 'log_type notice', 'log_type information');
  // As root, mosquitto would switch to the "mosquitto" user and then be
  // unable to read the files in our private temp dir.
  if (process.getuid?.() === 0) lines.push('user root');
  lines.push(`listener ${opts.port} ${HOST}`);
  if (opts.passwordFile) {
    lines.push('allow_anonymous false', `password_file ${opts.passwordFile}`);
  } else {
    lines.push('allow_anonymous true');
  }
  if (opts.tls) {
    lines.push(
      `cafile ${opts.tls.caFile}`,
      `certfile ${opts.tls.serverCert}`,
      `keyfile ${opts.tls.serverKey}`,
      `require_certificate ${opts.requireClientCert ? 'true' : 'false'}`,
    );
  }
  lines.push(...opts.extra);
  return `${lines.join('\n')}\n`;
}

export async function startMosquitto(options: MosquittoOptions = {}): Promise<MosquittoHandle> {
  const variant = options.variant ?? 'plain';
  const withPassword = variant === 'password' || variant === 'tls-password';
  const withTls = variant === 'tls' || variant === 'tls-password';
  const username = withPassword ? (options.username ?? 'cctv-test') : options.username;
  const password = withPassword ? (options.password ?? randomBytes(12).toString('base64url')) : options.password;

  sweepStaleDirs();
  const dir = await mkdtemp(path.join(os.tmpdir(), DIR_PREFIX));
  trackDir(dir);
  let proc: ManagedProcess | undefined;
  let history = '';
  let stopped = false;
  let port = 0;
  const confFile = path.join(dir, 'mosquitto.conf');

  const cleanupDir = async (): Promise<void> => {
    await rm(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  };

  try {
    await writeFile(path.join(dir, OWNER_FILE), `${process.pid}\n`);
    let passwordFile: string | undefined;
    if (withPassword) {
      passwordFile = path.join(dir, 'passwd');
      await run(MOSQUITTO_PASSWD, ['-b', '-c', passwordFile, username ?? '', password ?? ''], dir);
    }
    const tls = withTls ? await makeCertificates(dir) : undefined;

    const writeConfig = (p: number): Promise<void> =>
      writeFile(
        confFile,
        configText({
          port: p,
          passwordFile,
          tls,
          requireClientCert: options.requireClientCert ?? false,
          verbose: options.verbose ?? false,
          extra: options.extraConfig ?? [],
        }),
      );

    const launch = async (): Promise<void> => {
      const p = spawnManaged({ name: 'mosquitto', command: MOSQUITTO, args: ['-c', confFile], cwd: dir });
      proc = p;
      try {
        await waitUntil(p, `port ${port} to accept connections`, () => canConnect(HOST, port, 500), READY_TIMEOUT_MS);
      } catch (err) {
        await p.stop(STOP_GRACE_MS);
        history += p.logs();
        proc = undefined;
        throw err;
      }
    };

    // The free port may be taken between freePort() and mosquitto's bind():
    // retry with another one in that case.
    for (let attempt = 1; ; attempt++) {
      port = await freePort(HOST);
      await writeConfig(port);
      try {
        await launch();
        break;
      } catch (err) {
        const msg = (err as Error).message;
        if (attempt < 3 && /Address already in use/i.test(msg)) continue;
        throw err;
      }
    }

    const stopProc = async (): Promise<void> => {
      const p = proc;
      if (!p) return;
      await p.stop(STOP_GRACE_MS);
      history += p.logs();
      proc = undefined;
    };

    const handle: MosquittoHandle = {
      variant,
      url: withTls ? `mqtts://localhost:${port}` : `mqtt://${HOST}:${port}`,
      host: withTls ? 'localhost' : HOST,
      port,
      dir,
      caFile: tls?.caFile,
      certFile: tls?.clientCert,
      keyFile: tls?.clientKey,
      username,
      password,
      pid: () => (proc?.isRunning() ? proc.pid : undefined),
      isRunning: () => proc?.isRunning() ?? false,
      async clientOptions(opts = {}) {
        const out: MosquittoClientOptions = {};
        if (username !== undefined) out.username = username;
        if (password !== undefined) out.password = password;
        if (tls) {
          out.ca = await readFile(tls.caFile);
          out.rejectUnauthorized = true;
          if (opts.withClientCert || options.requireClientCert) {
            out.cert = await readFile(tls.clientCert);
            out.key = await readFile(tls.clientKey);
          }
        }
        return out;
      },
      async stop() {
        stopped = true;
        await stopProc();
        await cleanupDir();
      },
      async restart() {
        if (stopped) throw new Error('mosquitto: restart() after stop()');
        await stopProc();
        // Same port: a client holding it (e.g. in TIME_WAIT) does not block
        // mosquitto, which binds with SO_REUSEADDR.
        await launch();
      },
      async pause() {
        await stopProc();
      },
      async kill() {
        const p = proc;
        if (!p) return;
        p.signal('SIGKILL');
        await p.exited;
        await stopProc();
      },
      logs: () => history + (proc?.logs() ?? ''),
    };
    return handle;
  } catch (err) {
    await proc?.stop(STOP_GRACE_MS);
    await cleanupDir();
    throw err;
  }
}
