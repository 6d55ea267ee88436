/**
 * A constant-velocity Kalman filter on a box (centre x, centre y, width, height), the motion model
 * of SORT and ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every
 * Detection Box", ECCV 2022). With a diagonal process and measurement noise and a measurement
 * of the four positions, the 8-dimensional filter falls apart into four independent
 * (position, velocity) filters, so each track keeps 4 x 5 numbers instead of an 8 x 8 matrix
 * and every step is a few multiplications, all in one Float64Array allocated once.
 *
 * Layout of a track's block (STRIDE numbers from `base`), per axis a = 0..3 (cx, cy, w, h):
 * position, velocity (per second), and the covariance P00, P01, P11.
 */
export const KALMAN_STRIDE = 20;
const AXIS = 5;

/**
 * Noise as fractions of the box's own size, so a small far vehicle and a large near one are
 * tracked alike (SORT/DeepSORT scale the noise by box height; we scale x and width by the
 * width and y and height by the height). Velocities are per second.
 */
export interface KalmanNoise {
  /** Measurement standard deviation, fraction of the size. */
  measurement: number;
  /** Process noise on position per second, fraction of the size. */
  position: number;
  /** Process noise on velocity per second, fraction of the size (a vehicle speeding up or turning). */
  velocity: number;
}

export const DEFAULT_NOISE: KalmanNoise = { measurement: 0.05, position: 0.05, velocity: 0.5 };

/** Starts a track at a measured box with zero velocity and a wide velocity uncertainty. */
export function kalmanInit(state: Float64Array, base: number, cx: number, cy: number, w: number, h: number, noise: KalmanNoise): void {
  for (let axis = 0; axis < 4; axis++) {
    const o = base + axis * AXIS;
    const size = axis === 0 || axis === 2 ? w : h;
    const posStd = 2 * noise.measurement * size;
    // A vehicle may already move several box lengths a second: its first velocity is a guess.
    const velStd = 4 * size;
    state[o] = axis === 0 ? cx : axis === 1 ? cy : axis === 2 ? w : h;
    state[o + 1] = 0;
    state[o + 2] = posStd * posStd;
    state[o + 3] = 0;
    state[o + 4] = velStd * velStd;
  }
}

/** Moves a track `dt` seconds forward (x += v dt; P = F P F' + Q). */
export function kalmanPredict(state: Float64Array, base: number, dt: number, noise: KalmanNoise): void {
  const w = state[base + 2 * AXIS]!;
  const h = state[base + 3 * AXIS]!;
  for (let axis = 0; axis < 4; axis++) {
    const o = base + axis * AXIS;
    const size = axis === 0 || axis === 2 ? w : h;
    const qp = noise.position * size * dt;
    const qv = noise.velocity * size * dt;
    const p00 = state[o + 2]!;
    const p01 = state[o + 3]!;
    const p11 = state[o + 4]!;
    state[o] = state[o]! + state[o + 1]! * dt;
    state[o + 2] = p00 + 2 * dt * p01 + dt * dt * p11 + qp * qp;
    state[o + 3] = p01 + dt * p11;
    state[o + 4] = p11 + qv * qv;
  }
  // A shrinking box must not turn inside out between two matches.
  const minSize = 1e-4;
  if (state[base + 2 * AXIS]! < minSize) state[base + 2 * AXIS] = minSize;
  if (state[base + 3 * AXIS]! < minSize) state[base + 3 * AXIS] = minSize;
}

/** Corrects a track with a measured box (the standard update, per axis). */
export function kalmanUpdate(state: Float64Array, base: number, cx: number, cy: number, w: number, h: number, noise: KalmanNoise): void {
  for (let axis = 0; axis < 4; axis++) {
    const o = base + axis * AXIS;
    const measured = axis === 0 ? cx : axis === 1 ? cy : axis === 2 ? w : h;
    const size = axis === 0 || axis === 2 ? w : h;
    const r = noise.measurement * size;
    const p00 = state[o + 2]!;
    const p01 = state[o + 3]!;
    const p11 = state[o + 4]!;
    const s = p00 + r * r;
    const k0 = p00 / s;
    const k1 = p01 / s;
    const innovation = measured - state[o]!;
    state[o] = state[o]! + k0 * innovation;
    state[o + 1] = state[o + 1]! + k1 * innovation;
    state[o + 2] = (1 - k0) * p00;
    state[o + 3] = (1 - k0) * p01;
    state[o + 4] = p11 - k1 * p01;
  }
}

/** The filtered box of a track: centre x, centre y, width, height. */
export const kalmanCx = (state: Float64Array, base: number): number => state[base]!;
export const kalmanCy = (state: Float64Array, base: number): number => state[base + AXIS]!;
export const kalmanW = (state: Float64Array, base: number): number => state[base + 2 * AXIS]!;
export const kalmanH = (state: Float64Array, base: number): number => state[base + 3 * AXIS]!;
