/** What ffmpeg must hand the model: the input size, pixel order and how to fit the picture in. */
export type ResizeMode =
  | { mode: 'letterbox'; padValue: number; anchor: 'top-left' | 'center' }
  | { mode: 'stretch' }
  | { mode: 'center-crop' };

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
  const { width, height, resize } = geometry;
  if (resize.mode === 'stretch') {
    return { scaleX: width / sourceWidth, scaleY: height / sourceHeight, offsetX: 0, offsetY: 0 };
  }
  const ratio = resize.mode === 'letterbox'
    ? Math.min(width / sourceWidth, height / sourceHeight)
    : Math.max(width / sourceWidth, height / sourceHeight);
  const scaledWidth = sourceWidth * ratio;
  const scaledHeight = sourceHeight * ratio;
  const centred = resize.mode === 'center-crop' || resize.anchor === 'center';
  return {
    scaleX: ratio,
    scaleY: ratio,
    offsetX: centred ? (width - scaledWidth) / 2 : 0,
    offsetY: centred ? (height - scaledHeight) / 2 : 0,
  };
}
