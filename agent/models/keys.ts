import crypto from 'node:crypto';
import { AgentError, errorMessage } from '../errors.js';

/** An ed25519 key pair as `model keygen` writes it: PEM texts and the key id. */
export interface GeneratedKey {
  keyId: string;
  privateKeyPem: string;
  publicKeyPem: string;
  /** The 32 raw public key bytes in base64: the short form for the config. */
  publicKeyRaw: string;
}

/** SPKI DER of an ed25519 public key is this 12-byte prefix and the 32 raw bytes. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function rawPublicKey(key: crypto.KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return der.subarray(der.length - 32);
}

/** The key id: the first 16 hex digits of sha256 over the raw public key, stable across PEM and raw forms. */
export function keyIdOf(key: crypto.KeyObject): string {
  const publicKey = key.type === 'private' ? crypto.createPublicKey(key) : key;
  return crypto.createHash('sha256').update(rawPublicKey(publicKey)).digest('hex').slice(0, 16);
}

export function generateKey(): GeneratedKey {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  return {
    keyId: keyIdOf(publicKey),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKeyPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    publicKeyRaw: rawPublicKey(publicKey).toString('base64'),
  };
}

export function loadPrivateKey(pem: string, source: string): crypto.KeyObject {
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(pem);
  } catch (error) {
    throw new AgentError('MODEL_KEY_INVALID', `${source} is not a private key: ${errorMessage(error)}`, { cause: error });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new AgentError('MODEL_KEY_INVALID', `${source} is a ${key.asymmetricKeyType} key, not ed25519`);
  return key;
}

/** A public key from PEM (SPKI) or the 32 raw bytes in base64 (the config's short form). */
export function loadPublicKey(text: string, source: string): crypto.KeyObject {
  let key: crypto.KeyObject;
  try {
    const trimmed = text.trim();
    key = trimmed.startsWith('-----')
      ? crypto.createPublicKey(trimmed)
      : crypto.createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, decodeRaw(trimmed)]), format: 'der', type: 'spki' });
  } catch (error) {
    throw new AgentError('MODEL_KEY_INVALID', `${source} is not an ed25519 public key: ${errorMessage(error)}`, { cause: error });
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new AgentError('MODEL_KEY_INVALID', `${source} is a ${key.asymmetricKeyType} key, not ed25519`);
  return key;
}

function decodeRaw(base64: string): Buffer {
  const raw = Buffer.from(base64, 'base64');
  if (raw.length !== 32) throw new Error(`expected 32 bytes in base64, got ${raw.length}`);
  return raw;
}

export function signBytes(data: Buffer, privateKey: crypto.KeyObject): string {
  return crypto.sign(null, data, privateKey).toString('base64');
}

export function verifyBytes(data: Buffer, signature: string, publicKey: crypto.KeyObject): boolean {
  return crypto.verify(null, data, publicKey, Buffer.from(signature, 'base64'));
}
