import dns from 'node:dns';
import net from 'node:net';
import { AgentError, systemErrorCode } from '../errors.js';
import { sourceKind } from '../config/source-url.js';

/** dns.promises.lookup's shape, injected so tests need no DNS. */
export type HostLookup = (hostname: string) => Promise<{ address: string; family: number }>;

export const systemLookup: HostLookup = (hostname) => dns.promises.lookup(hostname);

export interface ResolvedSource {
  /** The URL to give ffmpeg: the host replaced by its address when ffmpeg cannot resolve names. */
  url: string;
  /** The host's address, when the URL named a host (undefined for files and IP literals). */
  address: string | undefined;
}

/**
 * Resolves a network camera's host name in Node, on every (re)connect, so a camera whose
 * address changes is followed and a name that does not resolve gets its own error code instead
 * of an ffmpeg that crashes or says nothing useful. When the ffmpeg in use cannot resolve names
 * itself (a static build), the address is put in the URL; otherwise ffmpeg gets the URL as
 * configured (TLS needs the name for SNI, HTTP servers may host by name).
 */
export async function resolveSourceHost(cameraId: string, url: string, ffmpegResolves: boolean, lookup: HostLookup = systemLookup): Promise<ResolvedSource> {
  if (sourceKind(url) === 'file') return { url, address: undefined };
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (net.isIP(host) !== 0) return { url, address: undefined };
  let address: string;
  try {
    ({ address } = await lookup(host));
  } catch (error) {
    const reason = systemErrorCode(error) ?? 'lookup failed';
    throw new AgentError('CAMERA_HOST_UNRESOLVED', `cameras.${cameraId}.url: host "${host}" does not resolve (${reason})`, { cause: error });
  }
  if (ffmpegResolves) return { url, address };
  parsed.hostname = net.isIPv6(address) ? `[${address}]` : address;
  return { url: parsed.toString(), address };
}
