/** What ffmpeg must hand the model: the input size, pixel order and how to fit the picture in. */
export type ResizeMode = { mode: 'letterbox'; padValue: number; anchor: 'top-left' | 'center' } | { mode: 'stretch' } | { mode: 'center-crop' };

export interface FrameGeometry {
  width: number;
  height: number;
  pixelFormat: 'bgr24' | 'rgb24' | 'gray';
  resize: ResizeMode;
}

export function bytesPerFrame(geometry: FrameGeometry): number {
  const channels = geometry.pixelFormat === 'gray' ? 1 : 3;
  return geometry.width * geometry.height * channels;
}

/**
 * Where the source picture lands inside the model input, so boxes can be mapped back to
 * normalised source coordinates. Mirrors ffmpeg's force_original_aspect_ratio arithmetic.
 */
export interface Placement {
  scaleX: number;
  scaleY: number;
  offsetX: number;
  offsetY: number;
}

export function placementFor(geometry: FrameGeometry, sourceWidth: number, sourceHeight: number): Placement {
  return placementInto({ scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 0 }, geometry, sourceWidth, sourceHeight);
}

/** placementFor into an existing object: the per-frame path allocates nothing. */
export function placementInto(target: Placement, geometry: FrameGeometry, sourceWidth: number, sourceHeight: number): Placement {
  const { width, height, resize } = geometry;
  if (resize.mode === 'stretch') {
    target.scaleX = width / sourceWidth;
    target.scaleY = height / sourceHeight;
    target.offsetX = 0;
    target.offsetY = 0;
    return target;
  }
  const ratio = resize.mode === 'letterbox' ? Math.min(width / sourceWidth, height / sourceHeight) : Math.max(width / sourceWidth, height / sourceHeight);
  const centred = resize.mode === 'center-crop' || resize.anchor === 'center';
  target.scaleX = ratio;
  target.scaleY = ratio;
  target.offsetX = centred ? (width - sourceWidth * ratio) / 2 : 0;
  target.offsetY = centred ? (height - sourceHeight * ratio) / 2 : 0;
  return target;
}
