import sharp from 'sharp';
import type { Frame } from '../../agent/ingest/frame.js';
import type { FrameGeometry } from '../../agent/ingest/frame-geometry.js';

/**
 * Makes the frame ffmpeg would deliver for a still image: fitted to the model input as the
 * geometry says (sharp stands in for ffmpeg's scale/pad/crop), in the model's colour order.
 */
export async function frameFromImage(file: string, geometry: FrameGeometry, cameraId = 'still'): Promise<Frame> {
  const meta = await sharp(file).metadata();
  const { width, height, resize } = geometry;
  let pipeline = sharp(file).removeAlpha();
  if (resize.mode === 'letterbox') {
    const pad = resize.padValue;
    pipeline = pipeline.resize(width, height, {
      fit: 'contain',
      position: resize.anchor === 'center' ? 'centre' : 'left top',
      background: { r: pad, g: pad, b: pad },
    });
  } else if (resize.mode === 'stretch') {
    pipeline = pipeline.resize(width, height, { fit: 'fill' });
  } else {
    pipeline = pipeline.resize(width, height, { fit: 'cover', position: 'centre' });
  }
  const { data } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (geometry.pixelFormat === 'bgr24') {
    for (let p = 0; p < data.length; p += 3) {
      const red = data[p]!;
      data[p] = data[p + 2]!;
      data[p + 2] = red;
    }
  }
  return { cameraId, seq: 0, capturedAt: Date.now(), width, height, sourceWidth: meta.width!, sourceHeight: meta.height!, roi: undefined, data };
}
