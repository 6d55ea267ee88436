import type { CameraConfig } from './schema.js';

/** What a camera's url names: a network stream (RTSP, HTTP MJPEG) or a local file. */
export type SourceKind = 'rtsp' | 'http' | 'file';

export function sourceKind(url: string): SourceKind {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'rtsp' || scheme === 'rtsps') return 'rtsp';
  if (scheme === 'http' || scheme === 'https') return 'http';
  return 'file';
}

/** Credentials from username/password override any in the URL; files need none. */
export function sourceUrlWithCredentials(camera: Pick<CameraConfig, 'url' | 'username' | 'password'>): string {
  if (sourceKind(camera.url) === 'file') return camera.url.startsWith('file://') ? new URL(camera.url).pathname : camera.url;
  if (camera.username === undefined && camera.password === undefined) return camera.url;
  const url = new URL(camera.url);
  if (camera.username !== undefined) url.username = encodeURIComponent(camera.username);
  if (camera.password !== undefined) url.password = encodeURIComponent(camera.password);
  return url.toString();
}
