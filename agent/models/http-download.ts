import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { AgentError, errorMessage } from '../errors.js';

export interface DownloadRequest {
  url: string;
  /** The .part file: its current length is where the download resumes (Range). */
  part: string;
  /** The announced size: more bytes than this is refused, fewer is a truncated download. */
  size: number;
  maxBytes: number;
  /** No byte for this long fails the attempt (the .part is kept). */
  idleTimeoutMs: number;
  signal?: AbortSignal;
  onBytes?: (total: number) => void;
}

/**
 * One download attempt into a .part file, resuming with a Range request when the .part has
 * bytes already (a server that ignores Range and answers 200 restarts it from zero). Resolves
 * once the .part holds exactly `size` bytes; rejects with a code otherwise.
 */
export function downloadOnce(request: DownloadRequest): Promise<void> {
  if (request.size > request.maxBytes)
    return Promise.reject(new AgentError('MODEL_BUNDLE_TOO_LARGE', `the announced bundle is ${request.size} bytes, over modelUpdates.maxBundleMB`));
  const have = fs.existsSync(request.part) ? fs.statSync(request.part).size : 0;
  if (have === request.size) return Promise.resolve();
  if (have > request.size) fs.truncateSync(request.part, 0);
  const offset = have > request.size ? 0 : have;
  const url = new URL(request.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return Promise.reject(new AgentError('USAGE', `a model URL must be http or https, got ${url.protocol}`));
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      if (error) reject(error);
      else resolve();
    };
    const req = client.get(url, { headers: offset > 0 ? { Range: `bytes=${offset}-` } : {}, ...(request.signal ? { signal: request.signal } : {}) }, (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200 && status !== 206) {
        res.resume();
        finish(new AgentError('MODEL_PULL_HTTP_STATUS', `${url.origin}${url.pathname} answered HTTP ${status}`));
        return;
      }
      const start = status === 206 ? offset : 0;
      const out = fs.createWriteStream(request.part, { flags: status === 206 ? 'a' : 'w' });
      let total = start;
      res.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > request.size) {
          req.destroy();
          out.destroy();
          finish(new AgentError('MODEL_BUNDLE_TOO_LARGE', `the server sent more than the announced ${request.size} bytes`));
          return;
        }
        if (!out.write(chunk)) res.pause();
        request.onBytes?.(total);
      });
      out.on('drain', () => res.resume());
      res.on('end', () => {
        out.end(() => {
          const fd = fs.openSync(request.part, 'r+');
          fs.fdatasyncSync(fd);
          fs.closeSync(fd);
          if (total < request.size) finish(new AgentError('MODEL_BUNDLE_TRUNCATED', `the download ended at ${total} of ${request.size} bytes`));
          else finish();
        });
      });
      res.on('error', (error) => {
        out.end();
        finish(
          new AgentError('MODEL_BUNDLE_TRUNCATED', `the download broke off at ${total} of ${request.size} bytes: ${errorMessage(error)}`, { cause: error }),
        );
      });
      res.on('aborted', () => {
        out.end();
        finish(new AgentError('MODEL_BUNDLE_TRUNCATED', `the server closed the download at ${total} of ${request.size} bytes`));
      });
    });
    req.setTimeout(request.idleTimeoutMs, () => {
      req.destroy();
      finish(new AgentError('MODEL_PULL_TIMEOUT', `no byte from ${url.host} for ${request.idleTimeoutMs} ms`));
    });
    req.on('error', (error) => finish(new AgentError('MODEL_PULL_FAILED', `the download from ${url.host} failed: ${errorMessage(error)}`, { cause: error })));
  });
}
