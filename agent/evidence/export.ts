import fs from 'node:fs/promises';
import path from 'node:path';
import { type VehicleType, vehicleTypes } from '../common/vehicle-types.js';
import { AgentError, errorMessage, systemErrorCode } from '../errors.js';
import type { Db } from '../storage/database.js';
import { detectionsOf, type EvidenceSample, EvidenceStore } from './evidence-store.js';
import type { SampleFiles } from './sample-files.js';
import type { SampleReason } from './sampler.js';

export const exportFormats = ['coco', 'yolo'] as const;
export type ExportFormat = (typeof exportFormats)[number];

/** One box of an exported image, in the JPEG's pixels. */
interface LabelBox {
  type: VehicleType;
  x: number;
  y: number;
  width: number;
  height: number;
  /** The model's score; absent for a vehicle a reviewer added (a miss). */
  score?: number;
}

interface ExportedImage {
  sample: EvidenceSample;
  boxes: LabelBox[];
  /** A reviewer gave at least one verdict on the result. */
  reviewed: boolean;
  /** Misses reported without a box: the image lacks their labels. */
  missesWithoutBox: number;
}

export interface ExportSummary {
  format: ExportFormat;
  dir: string;
  images: number;
  boxes: number;
  reviewed: number;
  /** Samples whose JPEG was gone (pruned while exporting). */
  skipped: number;
  missesWithoutBox: number;
}

interface FeedbackRow {
  detection_index: number | null;
  verdict: string;
  true_type: string | null;
  box: string | null;
}

/** A camera box [x, y, w, h] (fractions of the picture) in the pixels of a JPEG showing `crop` of it. */
function toPixels(box: readonly number[], sample: EvidenceSample): { x: number; y: number; width: number; height: number } {
  const [cx, cy, cw, ch] = sample.crop ?? [0, 0, 1, 1];
  const x0 = Math.min(Math.max((box[0]! - cx) / cw, 0), 1);
  const y0 = Math.min(Math.max((box[1]! - cy) / ch, 0), 1);
  const x1 = Math.min(Math.max((box[0]! + box[2]! - cx) / cw, 0), 1);
  const y1 = Math.min(Math.max((box[1]! + box[3]! - cy) / ch, 0), 1);
  const round = (value: number): number => Math.round(value * 100) / 100;
  return { x: round(x0 * sample.width), y: round(y0 * sample.height), width: round((x1 - x0) * sample.width), height: round((y1 - y0) * sample.height) };
}

/**
 * The labels of one sample: the model's detections with the reviewers' verdicts applied. A
 * false positive is removed, a wrong type is retyped, a miss with a box is added.
 */
function labelsOf(sample: EvidenceSample, feedback: readonly FeedbackRow[]): ExportedImage {
  const vehicles = detectionsOf(sample);
  const verdicts = new Map<number, FeedbackRow>();
  const misses: FeedbackRow[] = [];
  for (const row of feedback) {
    if (row.detection_index === null) misses.push(row);
    else verdicts.set(row.detection_index, row);
  }
  const boxes: LabelBox[] = [];
  vehicles.forEach((vehicle, index) => {
    const verdict = verdicts.get(index);
    if (verdict?.verdict === 'false-positive') return;
    const type = verdict?.verdict === 'wrong-type' && verdict.true_type ? (verdict.true_type as VehicleType) : vehicle.type;
    boxes.push({ type, ...toPixels(vehicle.box, sample), score: vehicle.score });
  });
  let missesWithoutBox = 0;
  for (const miss of misses) {
    if (miss.box === null || miss.true_type === null) {
      missesWithoutBox++;
      continue;
    }
    boxes.push({ type: miss.true_type as VehicleType, ...toPixels(JSON.parse(miss.box) as number[], sample) });
  }
  return { sample, boxes: boxes.filter((box) => box.width > 0 && box.height > 0), reviewed: feedback.length > 0, missesWithoutBox };
}

const categoryId = (type: VehicleType): number => vehicleTypes.indexOf(type) + 1;

/** COCO detection format: one annotations.json, the JPEGs under images/. */
function cocoOf(images: readonly ExportedImage[]): unknown {
  let annotationId = 0;
  return {
    info: { description: 'cctv-agent evidence samples', date_created: new Date().toISOString() },
    licenses: [],
    categories: vehicleTypes.map((type) => ({ id: categoryId(type), name: type, supercategory: 'vehicle' })),
    images: images.map((image, index) => ({
      id: index + 1,
      file_name: `images/${image.sample.file}`,
      width: image.sample.width,
      height: image.sample.height,
      date_captured: new Date(image.sample.capturedAt).toISOString(),
      // Not COCO's own, and ignored by tools that do not know them: what an estimator needs.
      sample_id: image.sample.sampleId,
      result_id: image.sample.resultId,
      camera_id: image.sample.cameraId,
      reason: image.sample.reason,
      disputed: image.sample.disputed,
      reviewed: image.reviewed,
    })),
    annotations: images.flatMap((image, index) =>
      image.boxes.map((box) => ({
        id: ++annotationId,
        image_id: index + 1,
        category_id: categoryId(box.type),
        bbox: [box.x, box.y, box.width, box.height],
        area: Math.round(box.width * box.height * 100) / 100,
        iscrowd: 0,
        ...(box.score === undefined ? {} : { score: box.score }),
      })),
    ),
  };
}

/** YOLO (Ultralytics) layout: images/, labels/ with one "class cx cy w h" line per box (normalised), data.yaml. */
async function writeYolo(dir: string, images: readonly ExportedImage[]): Promise<void> {
  await fs.mkdir(path.join(dir, 'labels'), { recursive: true });
  for (const image of images) {
    const { width, height } = image.sample;
    const lines = image.boxes.map((box) =>
      [
        categoryId(box.type) - 1,
        ((box.x + box.width / 2) / width).toFixed(6),
        ((box.y + box.height / 2) / height).toFixed(6),
        (box.width / width).toFixed(6),
        (box.height / height).toFixed(6),
      ].join(' '),
    );
    await fs.writeFile(path.join(dir, 'labels', image.sample.file.replace(/\.jpg$/, '.txt')), lines.length > 0 ? `${lines.join('\n')}\n` : '');
  }
  const names = vehicleTypes.map((type, index) => `  ${index}: ${type}`).join('\n');
  await fs.writeFile(path.join(dir, 'data.yaml'), `path: ${JSON.stringify(path.resolve(dir))}\ntrain: images\nval: images\nnames:\n${names}\n`);
}

export interface ExportFilter {
  cameraId?: string | undefined;
  reason?: SampleReason | undefined;
}

/**
 * Writes the evidence as a dataset labelling and training tools read (docs/evidence.md): the
 * JPEGs copied under DIR/images, the labels as COCO (DIR/annotations.json) or YOLO
 * (DIR/labels, DIR/data.yaml), with the reviewers' feedback applied. Reads the database only.
 */
export async function exportEvidence(db: Db, files: SampleFiles, dir: string, format: ExportFormat, filter: ExportFilter = {}): Promise<ExportSummary> {
  const feedbackOf = db.prepare<[string], FeedbackRow>(
    "SELECT detection_index, verdict, coalesce(true_type, CASE WHEN verdict = 'missed' THEN predicted_type END) AS true_type, box FROM feedback WHERE result_id = ? ORDER BY id",
  );
  const samples = new EvidenceStore(db)
    .all()
    .filter(
      (sample) => (filter.cameraId === undefined || sample.cameraId === filter.cameraId) && (filter.reason === undefined || sample.reason === filter.reason),
    );
  const images: ExportedImage[] = [];
  let skipped = 0;
  try {
    await fs.mkdir(path.join(dir, 'images'), { recursive: true });
    for (const sample of samples) {
      try {
        await fs.copyFile(files.pathOf(sample.file), path.join(dir, 'images', sample.file));
      } catch (error) {
        // The destination exists (made above): a missing file is the sample's, pruned meanwhile.
        if (systemErrorCode(error) !== 'ENOENT') throw error;
        skipped++;
        continue;
      }
      images.push(labelsOf(sample, feedbackOf.all(sample.resultId)));
    }
    if (format === 'coco') await fs.writeFile(path.join(dir, 'annotations.json'), `${JSON.stringify(cocoOf(images), null, 1)}\n`);
    else await writeYolo(dir, images);
  } catch (error) {
    throw new AgentError('EVIDENCE_EXPORT_FAILED', `cannot write the ${format} export to ${dir}: ${errorMessage(error)}`, { cause: error });
  }
  return {
    format,
    dir: path.resolve(dir),
    images: images.length,
    boxes: images.reduce((total, image) => total + image.boxes.length, 0),
    reviewed: images.filter((image) => image.reviewed).length,
    skipped,
    missesWithoutBox: images.reduce((total, image) => total + image.missesWithoutBox, 0),
  };
}
