/**
 * Which way a vehicle's move from P0 to P1 crosses the counting line A -> B: +1 from the line's
 * left to its right (seen standing at A facing B, in picture coordinates, y down), -1 from right
 * to left, 0 not at all (both points on one side, or past either end of the line). A point
 * exactly on the line counts as its right side, so a vehicle stopping on the line and moving on
 * crosses once.
 */
export function crossingDirection(ax: number, ay: number, bx: number, by: number, p0x: number, p0y: number, p1x: number, p1y: number): -1 | 0 | 1 {
  const dx = bx - ax;
  const dy = by - ay;
  const left0 = dx * (p0y - ay) - dy * (p0x - ax) < 0;
  const left1 = dx * (p1y - ay) - dy * (p1x - ax) < 0;
  if (left0 === left1) return 0;
  // The move's own line must separate A and B: the crossing point lies within the line's ends.
  const mx = p1x - p0x;
  const my = p1y - p0y;
  const sideA = mx * (ay - p0y) - my * (ax - p0x);
  const sideB = mx * (by - p0y) - my * (bx - p0x);
  if (sideA * sideB > 0) return 0;
  return left0 ? 1 : -1;
}
