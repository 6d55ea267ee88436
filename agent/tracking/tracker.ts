import { type VehicleType, vehicleTypes } from '../common/vehicle-types.js';
import { DEFAULT_NOISE, KALMAN_STRIDE, type KalmanNoise, kalmanCx, kalmanCy, kalmanH, kalmanInit, kalmanPredict, kalmanUpdate, kalmanW } from './kalman.js';
import { greedyMatch, type MatchScratch, matchScratch } from './match.js';

/** What the tracker reads of a detection (an InferenceResult's Vehicle fits). */
export interface TrackerInput {
  type: VehicleType;
  score: number;
  /** [x, y, width, height], normalised 0..1. */
  box: readonly [number, number, number, number] | readonly number[];
}

export interface TrackerOptions {
  /** Tracks alive at once (tentative, tracked and lost); a detection beyond is not tracked. */
  maxTracks: number;
  /** Detections at or above this are "high" (first association, may start tracks); the rest are "low". */
  highScore: number;
  /** A new track starts only from a high detection at or above this (ByteTrack: high + 0.1). */
  newTrackScore: number;
  /** Least IoU of a match: high detections with tracked and lost tracks. */
  firstMatchIou: number;
  /** Low detections with the tracks still unmatched (not lost ones). */
  secondMatchIou: number;
  /** Remaining high detections with tentative tracks (their boxes enlarged by twice `expand`: they have no velocity yet). */
  tentativeMatchIou: number;
  /**
   * Boxes are enlarged by this fraction of their size (about their centre) before IoU. At 5
   * frames a second a vehicle near the camera moves more than its own length between frames,
   * so the predicted and detected boxes often do not overlap at all (docs/counting.md).
   */
  expand: number;
  /** Consecutive matches before a track is confirmed and gets an id in the results. */
  confirmHits: number;
  /** A track not matched for this long dies. */
  maxLostSeconds: number;
  noise: KalmanNoise;
}

export const DEFAULT_TRACKER_OPTIONS: TrackerOptions = {
  maxTracks: 256,
  highScore: 0.5,
  newTrackScore: 0.6,
  firstMatchIou: 0.1,
  secondMatchIou: 0.3,
  tentativeMatchIou: 0.1,
  expand: 0.5,
  confirmHits: 2,
  maxLostSeconds: 1,
  noise: DEFAULT_NOISE,
};

/** A slot's state. */
export const FREE = 0;
export const TENTATIVE = 1;
export const TRACKED = 2;
export const LOST = 3;

/** The three associations of an update (a number, not a closure: update() allocates nothing). */
const FIRST = 1;
const SECOND = 2;
const THIRD = 3;
type Stage = typeof FIRST | typeof SECOND | typeof THIRD;

const TYPES = vehicleTypes.length;
const typeIndex = new Map<string, number>(vehicleTypes.map((type, index) => [type, index]));
/** The largest step the motion model is trusted with: after a longer gap every track is lost anyway. */
const MAX_DT_SECONDS = 5;

/**
 * A ByteTrack-style multi-object tracker for one camera (Zhang et al., ECCV 2022, see kalman.ts):
 * a constant-velocity Kalman filter per track; high-score detections are associated first with
 * tracked and lost tracks, then low-score detections with the tracks still unmatched (an
 * occluded or blurred vehicle keeps its track instead of losing it), then the remaining high
 * ones with tentative tracks; a new track starts from an unmatched confident detection, is
 * confirmed after `confirmHits` matches and dies `maxLostSeconds` after its last match. Its
 * vehicle type is the score-weighted vote over every detection it matched.
 *
 * Association is greedy by highest IoU rather than the Hungarian assignment of the paper: with
 * the few vehicles of a highway frame the two agree almost always, and greedy needs no
 * allocation. All state lives in typed arrays sized once: update() allocates nothing.
 *
 * Readers (the counting stage) look at the per-slot arrays after each update(): `movedAt[slot]`
 * equals `frame` when the slot's track was matched in this update, and then (fromX, fromY) is
 * its measured centre at the previous match and (toX, toY) the centre now.
 */
export class ByteTracker {
  readonly options: TrackerOptions;
  readonly capacity: number;
  /** Per slot: FREE, TENTATIVE, TRACKED or LOST. */
  readonly status: Uint8Array;
  /** Per slot: the track's id (1, 2, ... per tracker; 0 for a free slot). */
  readonly ids: Int32Array;
  readonly fromX: Float64Array;
  readonly fromY: Float64Array;
  readonly toX: Float64Array;
  readonly toY: Float64Array;
  /** Per slot: the frame number of its last match. */
  readonly movedAt: Int32Array;
  /** Per detection of the last update: the confirmed track's id, or 0. */
  assigned: Int32Array;
  /** Updates so far. */
  frame = 0;
  /** Tracks born, confirmed, and detections not tracked for want of a slot, since the start. */
  born = 0;
  confirmed = 0;
  overflow = 0;

  private readonly kalman: Float64Array;
  private readonly hits: Int32Array;
  private readonly lastSeen: Float64Array;
  private readonly votes: Float32Array;
  private nextId = 1;
  private lastAt: number | undefined;
  private scratch: MatchScratch;
  /** Per detection: 1 once matched or used in this update. */
  private used: Uint8Array;
  private readonly slotList: Int32Array;
  private detList: Int32Array;
  private readonly slotMatch: Int32Array;

  constructor(options: Partial<TrackerOptions> = {}) {
    this.options = { ...DEFAULT_TRACKER_OPTIONS, ...options };
    const capacity = this.options.maxTracks;
    this.capacity = capacity;
    this.status = new Uint8Array(capacity);
    this.ids = new Int32Array(capacity);
    this.fromX = new Float64Array(capacity);
    this.fromY = new Float64Array(capacity);
    this.toX = new Float64Array(capacity);
    this.toY = new Float64Array(capacity);
    this.movedAt = new Int32Array(capacity).fill(-1);
    this.kalman = new Float64Array(capacity * KALMAN_STRIDE);
    this.hits = new Int32Array(capacity);
    this.lastSeen = new Float64Array(capacity);
    this.votes = new Float32Array(capacity * TYPES);
    this.slotList = new Int32Array(capacity);
    this.slotMatch = new Int32Array(capacity * 2);
    this.assigned = new Int32Array(64);
    this.used = new Uint8Array(64);
    this.detList = new Int32Array(64);
    this.scratch = matchScratch(capacity, 64);
  }

  /** Tracks alive now (tentative, tracked or lost). */
  get alive(): number {
    let n = 0;
    for (let slot = 0; slot < this.capacity; slot++) if (this.status[slot] !== FREE) n++;
    return n;
  }

  /** The track's type by its score-weighted vote so far. */
  typeOf(slot: number): VehicleType {
    const base = slot * TYPES;
    let best = 0;
    for (let t = 1; t < TYPES; t++) if (this.votes[base + t]! > this.votes[base + best]!) best = t;
    return vehicleTypes[best]!;
  }

  /** The track's filtered box now: [cx, cy, w, h] written into `out`. */
  boxOf(slot: number, out: Float64Array | number[]): void {
    const base = slot * KALMAN_STRIDE;
    out[0] = kalmanCx(this.kalman, base);
    out[1] = kalmanCy(this.kalman, base);
    out[2] = kalmanW(this.kalman, base);
    out[3] = kalmanH(this.kalman, base);
  }

  /** One frame's detections at `atMs`; afterwards `assigned[i]` is detection i's track id (0: none yet). */
  update(atMs: number, detections: ArrayLike<TrackerInput>): void {
    const o = this.options;
    const count = detections.length;
    this.ensureDetections(count);
    this.frame++;
    const dt = this.lastAt === undefined ? 0 : Math.min(MAX_DT_SECONDS, Math.max(0, (atMs - this.lastAt) / 1000));
    this.lastAt = atMs;
    for (let slot = 0; slot < this.capacity; slot++) {
      if (this.status[slot] !== FREE && dt > 0) kalmanPredict(this.kalman, slot * KALMAN_STRIDE, dt, o.noise);
    }
    this.assigned.fill(0, 0, count);
    this.used.fill(0, 0, count);

    // 1. High detections with tracked and lost tracks.
    this.associate(detections, FIRST, o.firstMatchIou, atMs);
    // 2. Low detections with the tracked ones left: an occluded vehicle's weak box keeps its track.
    this.associate(detections, SECOND, o.secondMatchIou, atMs);
    // 3. High detections left with tentative tracks; a tentative track unmatched now dies.
    this.associate(detections, THIRD, o.tentativeMatchIou, atMs);

    for (let slot = 0; slot < this.capacity; slot++) {
      const status = this.status[slot]!;
      if (status === FREE || this.movedAt[slot] === this.frame) continue;
      if (status === TENTATIVE) this.release(slot);
      else if (status === TRACKED) this.status[slot] = LOST;
      if (this.status[slot] === LOST && atMs - this.lastSeen[slot]! > o.maxLostSeconds * 1000) this.release(slot);
    }

    // 4. Births from confident detections no track took.
    for (let i = 0; i < count; i++) {
      if (this.used[i] === 1) continue;
      const detection = detections[i]!;
      if (detection.score < o.newTrackScore) continue;
      const slot = this.freeSlot();
      if (slot < 0) {
        this.overflow++;
        continue;
      }
      this.birth(slot, detection, atMs);
    }
  }

  /** Matches the unused detections of one score band with the tracks one stage takes. */
  private associate(detections: ArrayLike<TrackerInput>, stage: Stage, minIou: number, atMs: number): void {
    const o = this.options;
    const high = stage !== SECOND;
    // A tentative track has no velocity yet: it is predicted where it was seen, so its gate is twice as wide.
    const expand = stage === THIRD ? o.expand * 2 : o.expand;
    let tracks = 0;
    for (let slot = 0; slot < this.capacity; slot++) {
      const status = this.status[slot]!;
      const eligible =
        stage === FIRST
          ? status === TRACKED || status === LOST
          : stage === SECOND
            ? status === TRACKED && this.movedAt[slot] !== this.frame
            : status === TENTATIVE;
      if (eligible) this.slotList[tracks++] = slot;
    }
    let dets = 0;
    for (let i = 0; i < detections.length; i++) {
      if (this.used[i] === 1) continue;
      if (detections[i]!.score >= o.highScore === high) this.detList[dets++] = i;
    }
    if (tracks === 0 || dets === 0) return;
    const { iou } = this.scratch;
    for (let t = 0; t < tracks; t++) {
      const base = this.slotList[t]! * KALMAN_STRIDE;
      const tcx = kalmanCx(this.kalman, base);
      const tcy = kalmanCy(this.kalman, base);
      const tw = kalmanW(this.kalman, base);
      const th = kalmanH(this.kalman, base);
      for (let d = 0; d < dets; d++) {
        const box = detections[this.detList[d]!]!.box;
        iou[t * this.scratch.columns + d] = expandedIou(tcx, tcy, tw, th, box[0]! + box[2]! / 2, box[1]! + box[3]! / 2, box[2]!, box[3]!, expand);
      }
    }
    const matched = greedyMatch(this.scratch, tracks, dets, minIou, this.slotMatch);
    for (let m = 0; m < matched; m++) {
      const slot = this.slotList[this.slotMatch[m * 2]!]!;
      const index = this.detList[this.slotMatch[m * 2 + 1]!]!;
      this.matchedWith(slot, index, detections[index]!, atMs);
    }
  }

  private matchedWith(slot: number, index: number, detection: TrackerInput, atMs: number): void {
    const o = this.options;
    const box = detection.box;
    // Indexed, not destructured: destructuring allocates an iterator until V8 optimises the caller.
    const w = box[2]!;
    const h = box[3]!;
    const cx = box[0]! + w / 2;
    const cy = box[1]! + h / 2;
    kalmanUpdate(this.kalman, slot * KALMAN_STRIDE, cx, cy, w, h, o.noise);
    this.fromX[slot] = this.toX[slot]!;
    this.fromY[slot] = this.toY[slot]!;
    this.toX[slot] = cx;
    this.toY[slot] = cy;
    this.movedAt[slot] = this.frame;
    this.lastSeen[slot] = atMs;
    this.hits[slot] = this.hits[slot]! + 1;
    this.votes[slot * TYPES + (typeIndex.get(detection.type) ?? TYPES - 1)]! += detection.score;
    if (this.status[slot] === TENTATIVE && this.hits[slot]! >= o.confirmHits) {
      this.status[slot] = TRACKED;
      this.confirmed++;
    } else if (this.status[slot] === LOST) this.status[slot] = TRACKED;
    this.used[index] = 1;
    if (this.status[slot] === TRACKED) this.assigned[index] = this.ids[slot]!;
  }

  private birth(slot: number, detection: TrackerInput, atMs: number): void {
    const box = detection.box;
    const w = box[2]!;
    const h = box[3]!;
    const cx = box[0]! + w / 2;
    const cy = box[1]! + h / 2;
    kalmanInit(this.kalman, slot * KALMAN_STRIDE, cx, cy, w, h, this.options.noise);
    this.votes.fill(0, slot * TYPES, slot * TYPES + TYPES);
    this.votes[slot * TYPES + (typeIndex.get(detection.type) ?? TYPES - 1)] = detection.score;
    this.ids[slot] = this.nextId++;
    this.hits[slot] = 1;
    this.lastSeen[slot] = atMs;
    this.fromX[slot] = cx;
    this.fromY[slot] = cy;
    this.toX[slot] = cx;
    this.toY[slot] = cy;
    this.movedAt[slot] = this.frame;
    this.born++;
    if (this.options.confirmHits <= 1) {
      this.status[slot] = TRACKED;
      this.confirmed++;
    } else this.status[slot] = TENTATIVE;
  }

  private release(slot: number): void {
    this.status[slot] = FREE;
    this.ids[slot] = 0;
    this.movedAt[slot] = -1;
  }

  private freeSlot(): number {
    for (let slot = 0; slot < this.capacity; slot++) if (this.status[slot] === FREE) return slot;
    return -1;
  }

  /** Grows the per-detection buffers (rarely: only when a frame has more detections than ever before). */
  private ensureDetections(count: number): void {
    if (count <= this.assigned.length) return;
    const size = Math.max(count, this.assigned.length * 2);
    this.assigned = new Int32Array(size);
    this.used = new Uint8Array(size);
    this.detList = new Int32Array(size);
    this.scratch = matchScratch(this.capacity, size);
  }
}

/** IoU of two boxes given by centre and size, each enlarged by `expand` of its size first. */
export function expandedIou(ax: number, ay: number, aw: number, ah: number, bx: number, by: number, bw: number, bh: number, expand: number): number {
  const k = (1 + expand) / 2;
  const left = Math.max(ax - aw * k, bx - bw * k);
  const right = Math.min(ax + aw * k, bx + bw * k);
  const top = Math.max(ay - ah * k, by - bh * k);
  const bottom = Math.min(ay + ah * k, by + bh * k);
  if (right <= left || bottom <= top) return 0;
  const inter = (right - left) * (bottom - top);
  const scale = (1 + expand) * (1 + expand);
  return inter / (aw * ah * scale + bw * bh * scale - inter);
}
