import type { ErrorCode } from '../errors.js';

/** What the link reports while it is not connected (docs/mqtt.md, "Link states"). */
export type LinkFailureState = 'auth-failed' | 'tls-failed' | 'unreachable' | 'refused';

export interface ConnectFailure {
  state: LinkFailureState;
  code: ErrorCode;
  /** The broker's CONNACK / DISCONNECT reason code (3.1.1 return code or MQTT 5 reason code). */
  reasonCode?: number;
  /** Node's error code (ECONNREFUSED, CERT_HAS_EXPIRED, ERR_SSL_...). */
  systemCode?: string;
  message: string;
  /** The broker does not speak the protocol version we asked for. */
  protocolRefused: boolean;
}

/** 3.1.1 return code 1 and MQTT 5 reason 132: "unacceptable / unsupported protocol version". */
const PROTOCOL_REFUSED = new Set([1, 132]);
/** 3.1.1: 4 bad user name or password, 5 not authorised; MQTT 5: 134 and 135, the same two. */
const AUTH_REFUSED = new Set([4, 5, 134, 135]);
/**
 * Certificate verification failures as Node reports them (OpenSSL's X509_V_ERR names). Any
 * ERR_SSL_* / ERR_TLS_* code is a TLS failure too (handshake alerts, a client certificate
 * the broker refused, a host name not in the certificate).
 */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? (error as { code: unknown }).code : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : 'connection closed';
}

/**
 * Sorts why a connection attempt (or an established connection) ended, from the error mqtt.js
 * emitted: a number `code` is the broker's reason code (mqtt.js ErrorWithReasonCode), a string
 * `code` is Node's. No code at all (the connection closed, CONNACK timed out) is "unreachable".
 */
export function classifyConnectFailure(error: unknown): ConnectFailure {
  const code = codeOf(error);
  const message = messageOf(error);
  if (typeof code === 'number') {
    if (PROTOCOL_REFUSED.has(code)) {
      return { state: 'refused', code: 'MQTT_CONNECT_FAILED', reasonCode: code, message, protocolRefused: true };
    }
    if (AUTH_REFUSED.has(code)) return { state: 'auth-failed', code: 'MQTT_AUTH_FAILED', reasonCode: code, message, protocolRefused: false };
    return { state: 'refused', code: 'MQTT_CONNECT_FAILED', reasonCode: code, message, protocolRefused: false };
  }
  if (typeof code === 'string') {
    if (TLS_VERIFY_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')) {
      return { state: 'tls-failed', code: 'MQTT_TLS_FAILED', systemCode: code, message, protocolRefused: false };
    }
    return { state: 'unreachable', code: 'MQTT_CONNECT_FAILED', systemCode: code, message, protocolRefused: false };
  }
  return { state: 'unreachable', code: 'MQTT_CONNECT_FAILED', message, protocolRefused: false };
}

/** One short line for health and logs: `MQTT_AUTH_FAILED (reason 135): Connection refused: Not authorized`. */
export function describeFailure(failure: ConnectFailure): string {
  const detail = failure.reasonCode !== undefined ? ` (reason ${failure.reasonCode})` : failure.systemCode ? ` (${failure.systemCode})` : '';
  return `${failure.code}${detail}: ${failure.message}`;
}
