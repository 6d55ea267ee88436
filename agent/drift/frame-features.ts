import type { Frame } from '../ingest/frame.js';
import { type FrameGeometry, type Placement, placementInto } from '../ingest/frame-geometry.js';
import type { WindowStats } from './window-stats.js';

/** Pixels read for the statistics: every STEP-th in both directions. */
const STEP = 4;
/** The Laplacian: on a grid of every LAPLACE_GRID-th pixel, with neighbours LAPLACE_REACH away. */
const LAPLACE_GRID = 8;
const LAPLACE_REACH = 2;

/**
 * Measures one sampled frame (HWC bytes at the model's input size, as ffmpeg delivers it) into
 * the window: mean luminance, contrast (its standard deviation), sharpness (variance of a
 * Laplacian), mean saturation, the shares of near-black (luma < 16) and blown-out (> 240)
 * pixels, and an 8-bin histogram per colour channel. Only the part the camera fills is read (the
 * letterbox padding is left out), every fourth pixel in both directions (the Laplacian on every
 * eighth, its neighbours two pixels away): bench/drift.ts has the cost. No allocation.
 */
export class FrameFeatures {
  private readonly placement: Placement = { scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 0 };
  private readonly red: number;
  private readonly blue: number;

  constructor(private readonly geometry: FrameGeometry) {
    // Byte offsets of red and blue in a pixel: bgr24 or rgb24.
    this.red = geometry.pixelFormat === 'bgr24' ? 2 : 0;
    this.blue = geometry.pixelFormat === 'bgr24' ? 0 : 2;
  }

  measure(frame: Frame, stats: WindowStats): void {
    const { width, height } = this.geometry;
    let x0 = 0;
    let y0 = 0;
    let x1 = width;
    let y1 = height;
    if (frame.sourceWidth > 0 && frame.sourceHeight > 0) {
      const spanX = frame.sourceWidth * (frame.roi?.width ?? 1);
      const spanY = frame.sourceHeight * (frame.roi?.height ?? 1);
      placementInto(this.placement, this.geometry, spanX, spanY);
      x0 = Math.max(0, Math.round(this.placement.offsetX));
      y0 = Math.max(0, Math.round(this.placement.offsetY));
      x1 = Math.min(width, Math.round(this.placement.offsetX + spanX * this.placement.scaleX));
      y1 = Math.min(height, Math.round(this.placement.offsetY + spanY * this.placement.scaleY));
    }
    const data = frame.data;
    const colour = stats.histograms.colour;
    const red = this.red;
    const blue = this.blue;
    let n = 0;
    let sum = 0;
    let squares = 0;
    let saturation = 0;
    let black = 0;
    let blown = 0;
    for (let y = y0; y < y1; y += STEP) {
      let at = (y * width + x0) * 3;
      for (let x = x0; x < x1; x += STEP, at += STEP * 3) {
        const r = data[at + red]!;
        const g = data[at + 1]!;
        const b = data[at + blue]!;
        const luma = 0.299 * r + 0.587 * g + 0.114 * b;
        sum += luma;
        squares += luma * luma;
        const max = r > g ? (r > b ? r : b) : g > b ? g : b;
        const min = r < g ? (r < b ? r : b) : g < b ? g : b;
        if (max > 0) saturation += (max - min) / max;
        if (luma < 16) black++;
        else if (luma > 240) blown++;
        colour[r >> 5]! += 1;
        colour[8 + (g >> 5)]! += 1;
        colour[16 + (b >> 5)]! += 1;
        n++;
      }
    }
    if (n === 0) return;
    const mean = sum / n;
    stats.addInput('luminance', mean);
    stats.addInput('contrast', Math.sqrt(Math.max(0, squares / n - mean * mean)));
    stats.addInput('saturation', saturation / n);
    stats.addInput('nearBlack', black / n);
    stats.addInput('blownOut', blown / n);
    stats.addInput('sharpness', this.laplacianVariance(data, x0 + LAPLACE_REACH, y0 + LAPLACE_REACH, x1 - LAPLACE_REACH, y1 - LAPLACE_REACH));
    stats.frameSampled(frame.capturedAt);
  }

  private luma(data: Buffer, x: number, y: number): number {
    const at = (y * this.geometry.width + x) * 3;
    return 0.299 * data[at + this.red]! + 0.587 * data[at + 1]! + 0.114 * data[at + this.blue]!;
  }

  /** Variance of the 4-neighbour Laplacian of luma on a sparse grid: falls with blur and fog. */
  private laplacianVariance(data: Buffer, x0: number, y0: number, x1: number, y1: number): number {
    let n = 0;
    let sum = 0;
    let squares = 0;
    const s = LAPLACE_REACH;
    for (let y = y0; y < y1; y += LAPLACE_GRID) {
      for (let x = x0; x < x1; x += LAPLACE_GRID) {
        const value = 4 * this.luma(data, x, y) - this.luma(data, x - s, y) - this.luma(data, x + s, y) - this.luma(data, x, y - s) - this.luma(data, x, y + s);
        sum += value;
        squares += value * value;
        n++;
      }
    }
    if (n === 0) return 0;
    const mean = sum / n;
    return squares / n - mean * mean;
  }
}
