import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { runAssetsCommand } from '../../agent/assets/fetch-cli.js';
import { LoadedModel } from '../../agent/inference/loaded-model.js';
import { resolveConfiguredModel } from '../../agent/inference/model-files.js';
import { deriveDefaultModels, LOCAL_INT8, provenanceFile, type Provenance } from '../../agent/quantize/derive-default.js';
import { assetPath } from '../helpers/assets.js';
import { frameFromImage } from '../support/image-frame.js';
import { useTempDir } from '../support/temp-dir.js';

const tempDir = useTempDir('cctv-derive-');

function sink(): { stream: Writable; text: () => string } {
  let text = '';
  return {
    stream: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        text += chunk.toString();
        callback();
      },
    }),
    text: () => text,
  };
}

/**
 * Issue #7: on a fresh machine the catalogued int8 model has no upstream, so the asset fetch
 * makes one from the upstream float model, calibrated on the demo clip, and "auto" runs it.
 */
describe('the asset fetch derives the int8 model when it cannot fetch it', () => {
  it('makes yolox-nano-int8-local.onnx with its provenance, "auto" picks it, and it detects vehicles', async () => {
    const root = tempDir();
    // A mirror with what a fresh machine gets from upstream: the float model, labels, the clips.
    const mirror = path.join(root, 'mirror');
    fs.mkdirSync(path.join(mirror, 'models'), { recursive: true });
    fs.mkdirSync(path.join(mirror, 'video'), { recursive: true });
    fs.mkdirSync(path.join(mirror, 'images'), { recursive: true });
    // Required, and made from the .avi on a machine without a mirror (its catalog entry says how).
    fs.symlinkSync(assetPath('highway-frame-t5s.png'), path.join(mirror, 'images', 'highway-frame-t5s.png'));
    for (const name of ['yolox-nano.onnx', 'coco-labels.txt']) fs.symlinkSync(assetPath(name), path.join(mirror, 'models', name));
    for (const name of ['highway-cctv-320x240.mp4', 'highway-cctv-320x240.avi']) fs.symlinkSync(assetPath(name), path.join(mirror, 'video', name));
    const dest = path.join(root, 'assets');

    const out = sink();
    const err = sink();
    const started = Date.now();
    const code = await runAssetsCommand(['fetch', '--mirror', mirror, '--dest', dest, '--offline'], {
      out: out.stream, err: err.stream, env: {}, derive: deriveDefaultModels,
    });
    const seconds = (Date.now() - started) / 1000;
    console.log(`fetch + derivation: ${seconds.toFixed(1)} s\n${out.text().split('\n').filter((line) => !line.includes('UNAVAILABLE (optional)')).join('\n')}`);
    expect(code, err.text()).toBe(0);
    expect(fs.existsSync(path.join(dest, 'yolox-nano-int8.onnx'))).toBe(false);
    const provenance = JSON.parse(fs.readFileSync(provenanceFile(dest), 'utf8')) as Provenance;
    expect(provenance.output.bytes).toBe(fs.statSync(path.join(dest, LOCAL_INT8)).size);
    // The manifest carries the threshold this derivation calibrates.
    expect(provenance.scoreThreshold).toBe(0.325);
    expect(provenance.output.bytes).toBeLessThan(fs.statSync(assetPath('yolox-nano.onnx')).size / 2);

    const resolved = resolveConfiguredModel('auto', dest);
    expect(resolved.manifest.id).toBe('yolox-nano-int8-local');
    const model = await LoadedModel.load(resolved, { intraOpThreads: 2, interOpThreads: 1, graphOptimization: 'all', executionProviders: ['cpu'], cpuMemArena: true, spinWait: false });
    try {
      const result = await model.infer(await frameFromImage(assetPath('highway-frame-t5s.png'), model.geometry));
      expect(result.vehicles.length).toBeGreaterThanOrEqual(5);
      expect(result.model.id).toBe('yolox-nano-int8-local');
    } finally {
      await model.release();
    }

    // A second fetch sees it is up to date and does not quantize again.
    const again = sink();
    expect(await runAssetsCommand(['fetch', '--mirror', mirror, '--dest', dest, '--offline'], { out: again.stream, err: err.stream, env: {}, derive: deriveDefaultModels })).toBe(0);
    expect(again.text()).toContain('derived earlier from the same inputs');
  }, 240_000);
});
