import type { ClassificationManifest, VehicleType } from './manifest.js';
import type { ClassScore } from './result.js';

export type ClassificationDecoder = (output: Float32Array) => ClassScore[];

/** Top-k over probabilities (or logits, through a softmax). */
export function createClassificationDecoder(manifest: ClassificationManifest, labels: string[]): ClassificationDecoder {
  const k = Math.min(manifest.output.topK, labels.length);
  const typeOfClass: Array<VehicleType | null> = labels.map((label) => manifest.vehicleTypes[label] ?? null);
  const topIndex = new Int32Array(k);
  const topScore = new Float64Array(k);
  const softmax = manifest.output.scores === 'logits';

  return (data) => {
    const classes = labels.length;
    let max = -Infinity;
    let sum = 0;
    if (softmax) {
      for (let c = 0; c < classes; c++) if (data[c]! > max) max = data[c]!;
      for (let c = 0; c < classes; c++) sum += Math.exp(data[c]! - max);
    }
    topScore.fill(-Infinity);
    for (let c = 0; c < classes; c++) {
      const score = softmax ? Math.exp(data[c]! - max) / sum : data[c]!;
      if (score <= topScore[k - 1]!) continue;
      let position = k - 1;
      while (position > 0 && topScore[position - 1]! < score) {
        topScore[position] = topScore[position - 1]!;
        topIndex[position] = topIndex[position - 1]!;
        position--;
      }
      topScore[position] = score;
      topIndex[position] = c;
    }
    const top: ClassScore[] = [];
    for (let i = 0; i < k; i++) {
      const c = topIndex[i]!;
      top.push({ label: labels[c]!, type: typeOfClass[c]!, score: Math.round(topScore[i]! * 1000) / 1000 });
    }
    return top;
  };
}
