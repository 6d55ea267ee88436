/**
 * Candidate boxes in model-input pixels, as parallel arrays that are reused across frames.
 * Each candidate carries its best class and, as the runner-up, the best-scoring class of
 * another group (for a vehicle detector: another vehicle type) from the same output row.
 */
export class Candidates {
  count = 0;
  readonly x1: Float32Array;
  readonly y1: Float32Array;
  readonly x2: Float32Array;
  readonly y2: Float32Array;
  readonly score: Float32Array;
  readonly classId: Int32Array;
  /** The runner-up class (-1: none) and its score, filled by add() and raised by suppress(). */
  readonly runnerClass: Int32Array;
  readonly runnerScore: Float32Array;
  private readonly order: Int32Array;
  private readonly suppressed: Uint8Array;
  private readonly kept: Int32Array;

  constructor(readonly capacity: number) {
    this.x1 = new Float32Array(capacity);
    this.y1 = new Float32Array(capacity);
    this.x2 = new Float32Array(capacity);
    this.y2 = new Float32Array(capacity);
    this.score = new Float32Array(capacity);
    this.classId = new Int32Array(capacity);
    this.runnerClass = new Int32Array(capacity);
    this.runnerScore = new Float32Array(capacity);
    this.order = new Int32Array(capacity);
    this.suppressed = new Uint8Array(capacity);
    this.kept = new Int32Array(capacity);
  }

  /** Keeps the best `capacity` candidates: when full, a better one replaces the worst. */
  add(x1: number, y1: number, x2: number, y2: number, score: number, classId: number, runnerClass = -1, runnerScore = 0): void {
    let index = this.count;
    if (index === this.capacity) {
      let worst = 0;
      for (let i = 1; i < this.count; i++) if (this.score[i]! < this.score[worst]!) worst = i;
      if (this.score[worst]! >= score) return;
      index = worst;
    } else {
      this.count++;
    }
    this.x1[index] = x1;
    this.y1[index] = y1;
    this.x2[index] = x2;
    this.y2[index] = y2;
    this.score[index] = score;
    this.classId[index] = classId;
    this.runnerClass[index] = runnerClass;
    this.runnerScore[index] = runnerScore;
  }

  /**
   * Greedy non-maximum suppression, best score first. `groupOfClass` maps a class to its group
   * (a vehicle type). Class-agnostic (`classAgnostic`): a box suppresses every lower-scored box
   * that overlaps it by more than `iouThreshold`, whatever its class, since a detector's classes
   * for one vehicle (car, truck) are alternative labels of one object; the best suppressed box of
   * another group becomes the survivor's runner-up when it beats the row's own. Per class: only
   * boxes of the same class are suppressed. Calls `keep` for survivors, best first, at most
   * `limit` times.
   */
  suppress(iouThreshold: number, limit: number, classAgnostic: boolean, groupOfClass: Int32Array, keep: (index: number) => void): void {
    const n = this.count;
    for (let i = 0; i < n; i++) {
      this.order[i] = i;
      this.suppressed[i] = 0;
    }
    // Insertion sort by score: candidate counts after thresholding are small.
    for (let i = 1; i < n; i++) {
      const value = this.order[i]!;
      let j = i - 1;
      while (j >= 0 && this.score[this.order[j]!]! < this.score[value]!) {
        this.order[j + 1] = this.order[j]!;
        j--;
      }
      this.order[j + 1] = value;
    }
    let kept = 0;
    for (let oi = 0; oi < n && kept < limit; oi++) {
      const a = this.order[oi]!;
      if (this.suppressed[a]) continue;
      this.kept[kept++] = a;
      const groupA = groupOfClass[this.classId[a]!]!;
      for (let oj = oi + 1; oj < n; oj++) {
        const b = this.order[oj]!;
        if (this.suppressed[b]) continue;
        const sameClass = this.classId[b] === this.classId[a];
        if (!classAgnostic && !sameClass) continue;
        if (this.iou(a, b) <= iouThreshold) continue;
        this.suppressed[b] = 1;
        if (groupOfClass[this.classId[b]!] !== groupA && this.score[b]! > this.runnerScore[a]!) {
          this.runnerClass[a] = this.classId[b]!;
          this.runnerScore[a] = this.score[b]!;
        }
      }
    }
    for (let k = 0; k < kept; k++) keep(this.kept[k]!);
  }

  private iou(a: number, b: number): number {
    const width = Math.min(this.x2[a]!, this.x2[b]!) - Math.max(this.x1[a]!, this.x1[b]!);
    const height = Math.min(this.y2[a]!, this.y2[b]!) - Math.max(this.y1[a]!, this.y1[b]!);
    if (width <= 0 || height <= 0) return 0;
    const intersection = width * height;
    const areaA = (this.x2[a]! - this.x1[a]!) * (this.y2[a]! - this.y1[a]!);
    const areaB = (this.x2[b]! - this.x1[b]!) * (this.y2[b]! - this.y1[b]!);
    return intersection / (areaA + areaB - intersection);
  }
}
