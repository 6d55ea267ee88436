/** Buffers of one association, sized for every track and the most detections seen. */
export interface MatchScratch {
  /** iou[t * columns + d] */
  iou: Float32Array;
  columns: number;
  rowUsed: Uint8Array;
  columnUsed: Uint8Array;
}

export function matchScratch(rows: number, columns: number): MatchScratch {
  return { iou: new Float32Array(rows * columns), columns, rowUsed: new Uint8Array(rows), columnUsed: new Uint8Array(columns) };
}

/**
 * Greedy assignment: repeatedly takes the pair with the highest IoU of the rows and columns
 * still free, down to `minIou`. Writes (row, column) pairs into `out` and returns how many.
 * O(pairs x matches), which for a highway frame (tens of tracks and detections) is a few
 * thousand comparisons and no allocation.
 */
export function greedyMatch(scratch: MatchScratch, rows: number, columns: number, minIou: number, out: Int32Array): number {
  const { iou, rowUsed, columnUsed } = scratch;
  const stride = scratch.columns;
  rowUsed.fill(0, 0, rows);
  columnUsed.fill(0, 0, columns);
  let matched = 0;
  const most = Math.min(rows, columns);
  while (matched < most) {
    let best = minIou;
    let bestRow = -1;
    let bestColumn = -1;
    for (let r = 0; r < rows; r++) {
      if (rowUsed[r] === 1) continue;
      const base = r * stride;
      for (let c = 0; c < columns; c++) {
        if (columnUsed[c] === 1) continue;
        const value = iou[base + c]!;
        if (value >= best && (bestRow < 0 || value > best)) {
          best = value;
          bestRow = r;
          bestColumn = c;
        }
      }
    }
    if (bestRow < 0) break;
    rowUsed[bestRow] = 1;
    columnUsed[bestColumn] = 1;
    out[matched * 2] = bestRow;
    out[matched * 2 + 1] = bestColumn;
    matched++;
  }
  return matched;
}
