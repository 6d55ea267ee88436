import type { Roi } from '../config/schema.js';
import { placementInto, type FrameGeometry, type Placement } from '../ingest/frame-geometry.js';
import type { DetectionManifest, VehicleType } from './manifest.js';
import { Candidates } from './nms.js';
import type { Vehicle } from './result.js';

/**
 * sourceWidth/Height: the camera picture (0 when unknown); roi: the part of it the model saw.
 * Boxes come back normalised to the whole camera picture.
 */
export type DetectionDecoder = (output: Float32Array, sourceWidth: number, sourceHeight: number, roi: Roi | undefined) => Vehicle[];

const round4 = (value: number): number => Math.round(value * 10_000) / 10_000;
const round3 = (value: number): number => Math.round(value * 1000) / 1000;
const clamp01 = (value: number): number => (value < 0 ? 0 : Math.min(value, 1));

/** Cell offsets and strides for YOLOX's flattened grid, computed once per model. */
export function yoloxGrid(width: number, height: number, strides: number[]): { gridX: Float32Array; gridY: Float32Array; stride: Float32Array } {
  const cells = strides.reduce((sum, s) => sum + Math.floor(width / s) * Math.floor(height / s), 0);
  const gridX = new Float32Array(cells);
  const gridY = new Float32Array(cells);
  const stride = new Float32Array(cells);
  let index = 0;
  for (const s of strides) {
    const columns = Math.floor(width / s);
    const rows = Math.floor(height / s);
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < columns; x++) {
        gridX[index] = x;
        gridY[index] = y;
        stride[index] = s;
        index++;
      }
    }
  }
  return { gridX, gridY, stride };
}

export function expectedDetectionRows(manifest: DetectionManifest): number | undefined {
  if (manifest.output.decoder !== 'yolox') return undefined;
  return yoloxGrid(manifest.input.width, manifest.input.height, manifest.output.strides).stride.length;
}

/** A runner-up type below this score is noise, not a confusion worth reporting. */
export const RUNNER_UP_MIN_SCORE = 0.05;

/**
 * Decodes [1, rows, 5 + C] (x, y, w, h, objectness, class scores) into vehicles:
 * score = objectness x best class score, non-maximum suppression (across vehicle types by
 * default: one box per vehicle, docs/model-manifest.md), boxes mapped back through the
 * letterbox to the source picture. Only labels in the manifest's vehicle map are reported; each
 * vehicle carries the best-scoring other vehicle type as its runner-up.
 */
export function createDetectionDecoder(manifest: DetectionManifest, labels: string[], geometry: FrameGeometry, scoreThreshold: number): DetectionDecoder {
  const { output, input } = manifest;
  const classes = labels.length;
  const rowLength = 5 + classes;
  const typeOfClass: Array<VehicleType | undefined> = labels.map((label) => manifest.vehicleTypes[label]);
  // Vehicle types as small integers, for the suppression's "same vehicle type" test.
  const typeIndex = new Map<VehicleType, number>();
  const groupOfClass = new Int32Array(classes).fill(-1);
  typeOfClass.forEach((type, classId) => {
    if (type === undefined) return;
    if (!typeIndex.has(type)) typeIndex.set(type, typeIndex.size);
    groupOfClass[classId] = typeIndex.get(type)!;
  });
  const vehicleClasses = Int32Array.from(typeOfClass.flatMap((type, classId) => (type === undefined ? [] : [classId])));
  const classAgnostic = output.nms === 'class-agnostic';
  const grid = output.decoder === 'yolox' ? yoloxGrid(input.width, input.height, output.strides) : undefined;
  const candidates = new Candidates(Math.max(output.maxDetections * 4, 200));
  const placement: Placement = { scaleX: 1, scaleY: 1, offsetX: 0, offsetY: 0 };

  return (data, sourceWidth, sourceHeight, roi) => {
    // The picture the model saw: the ROI of the source (or the bare model input when the
    // source size is unknown); boxes are normalised to it, then placed in the whole picture.
    const known = sourceWidth > 0 && sourceHeight > 0;
    const roiX = roi?.x ?? 0;
    const roiY = roi?.y ?? 0;
    const roiWidth = roi?.width ?? 1;
    const roiHeight = roi?.height ?? 1;
    const spanX = known ? sourceWidth * roiWidth : input.width;
    const spanY = known ? sourceHeight * roiHeight : input.height;
    placementInto(placement, geometry, spanX, spanY);
    candidates.count = 0;
    const rows = Math.floor(data.length / rowLength);
    for (let row = 0, base = 0; row < rows; row++, base += rowLength) {
      const objectness = data[base + 4]!;
      if (objectness < scoreThreshold) continue; // score <= objectness: cheap early exit
      let best = 0;
      let bestScore = data[base + 5]!;
      for (let c = 1; c < classes; c++) {
        const value = data[base + 5 + c]!;
        if (value > bestScore) {
          bestScore = value;
          best = c;
        }
      }
      const score = objectness * bestScore;
      if (score < scoreThreshold || typeOfClass[best] === undefined) continue;
      // The row's own runner-up: the best vehicle class of another type.
      let runner = -1;
      let runnerScore = 0;
      for (let v = 0; v < vehicleClasses.length; v++) {
        const c = vehicleClasses[v]!;
        if (groupOfClass[c] === groupOfClass[best]) continue;
        const value = objectness * data[base + 5 + c]!;
        if (value > runnerScore) {
          runnerScore = value;
          runner = c;
        }
      }
      let cx = data[base]!;
      let cy = data[base + 1]!;
      let w = data[base + 2]!;
      let h = data[base + 3]!;
      if (grid) {
        const s = grid.stride[row]!;
        cx = (cx + grid.gridX[row]!) * s;
        cy = (cy + grid.gridY[row]!) * s;
        w = Math.exp(w) * s;
        h = Math.exp(h) * s;
      }
      candidates.add(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score, best, runner, runnerScore);
    }
    const vehicles: Vehicle[] = [];
    candidates.suppress(output.nmsIouThreshold, output.maxDetections, classAgnostic, groupOfClass, (index) => {
      const x1 = roiX + roiWidth * clamp01((candidates.x1[index]! - placement.offsetX) / placement.scaleX / spanX);
      const y1 = roiY + roiHeight * clamp01((candidates.y1[index]! - placement.offsetY) / placement.scaleY / spanY);
      const x2 = roiX + roiWidth * clamp01((candidates.x2[index]! - placement.offsetX) / placement.scaleX / spanX);
      const y2 = roiY + roiHeight * clamp01((candidates.y2[index]! - placement.offsetY) / placement.scaleY / spanY);
      const classId = candidates.classId[index]!;
      const vehicle: Vehicle = {
        type: typeOfClass[classId]!,
        label: labels[classId]!,
        score: round3(candidates.score[index]!),
        box: [round4(x1), round4(y1), round4(x2 - x1), round4(y2 - y1)],
      };
      const runnerClass = candidates.runnerClass[index]!;
      if (runnerClass >= 0 && candidates.runnerScore[index]! >= RUNNER_UP_MIN_SCORE) {
        vehicle.runnerUp = { type: typeOfClass[runnerClass]!, label: labels[runnerClass]!, score: round3(candidates.runnerScore[index]!) };
      }
      vehicles.push(vehicle);
    });
    return vehicles;
  };
}
