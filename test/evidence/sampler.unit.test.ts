import { describe, expect, it } from 'vitest';
import { EvidenceSampler } from '../../agent/evidence/sampler.js';
import type { InferenceResult } from '../../agent/inference/result.js';

/** A small seeded generator (mulberry32): the same draws on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function result(capturedAt: number, scores: number[], cameraId = 'north'): InferenceResult {
  return {
    cameraId,
    seq: 0,
    capturedAt,
    model: { id: 'm', version: '1' },
    task: 'detection',
    vehicles: scores.map((score) => ({ type: 'car', label: 'car', score, box: [0.1, 0.1, 0.2, 0.2] })),
    inferenceMs: 5,
  };
}

describe('evidence sampler', () => {
  it('keeps each frame with probability randomShare, whatever it shows: within 3 standard errors over many seeded draws', () => {
    for (const [share, seed] of [
      [0.001, 1],
      [0.01, 2],
      [0.2, 3],
    ] as const) {
      const sampler = new EvidenceSampler({ randomShare: share, lowConfidenceBelow: 0.45, lowConfidencePerHour: 1000 }, seeded(seed));
      const frames = 400_000;
      let random = 0;
      let randomAmongLow = 0;
      let low = 0;
      for (let i = 0; i < frames; i++) {
        // Half the frames hold a low-confidence detection: the draw must not care.
        const isLow = i % 2 === 0;
        const reason = sampler.choose(result(i, isLow ? [0.3, 0.9] : [0.9]));
        if (isLow) low++;
        if (reason === 'random') {
          random++;
          if (isLow) randomAmongLow++;
        }
      }
      const standardError = Math.sqrt((share * (1 - share)) / frames);
      expect(Math.abs(random / frames - share)).toBeLessThan(3 * standardError);
      const lowError = Math.sqrt((share * (1 - share)) / low);
      expect(Math.abs(randomAmongLow / low - share)).toBeLessThan(3 * lowError);
    }
  });

  it('the draw comes first: a low-confidence frame drawn at random is a random sample', () => {
    const sampler = new EvidenceSampler({ randomShare: 0.5, lowConfidenceBelow: 0.45, lowConfidencePerHour: 10 }, () => 0.1);
    expect(sampler.choose(result(0, [0.2]))).toBe('random');
  });

  it('low-confidence frames qualify up to lowConfidencePerHour per camera over a sliding hour, spaced; busy drops use none of it', () => {
    const sampler = new EvidenceSampler({ randomShare: 0, lowConfidenceBelow: 0.45, lowConfidencePerHour: 3 }, () => 0.99);
    const hour = 3_600_000;
    // 3 an hour: at least 10 minutes apart (half the even spacing of 20).
    const spacing = 600_000;
    expect(sampler.choose(result(0, [0.9]))).toBeUndefined();
    // Chosen but not taken (the encoder was busy): the hour's budget is untouched.
    for (let i = 0; i < 10; i++) expect(sampler.choose(result(i, [0.3]))).toBe('low-confidence');
    for (const at of [0, spacing, 2 * spacing]) {
      const frame = result(at, [0.3]);
      expect(sampler.choose(result(at - 1, [0.3]))).toBe(at === 0 ? 'low-confidence' : undefined);
      expect(sampler.choose(frame)).toBe('low-confidence');
      sampler.took(frame, 'low-confidence');
    }
    expect(sampler.choose(result(3 * spacing, [0.3]))).toBeUndefined();
    // Another camera has its own budget.
    expect(sampler.choose(result(3000, [0.3], 'south'))).toBe('low-confidence');
    // One hour after the first, one slot frees.
    expect(sampler.choose(result(hour - 1, [0.3]))).toBeUndefined();
    const later = result(hour, [0.3]);
    expect(sampler.choose(later)).toBe('low-confidence');
    sampler.took(later, 'low-confidence');
    expect(sampler.choose(result(hour + spacing - 1, [0.3]))).toBeUndefined();
    expect(sampler.choose(result(hour + spacing, [0.3]))).toBe('low-confidence');
  });

  it('randomShare 0 and lowConfidencePerHour 0 keep nothing', () => {
    const sampler = new EvidenceSampler({ randomShare: 0, lowConfidenceBelow: 0.45, lowConfidencePerHour: 0 }, () => 0);
    expect(sampler.choose(result(0, [0.1]))).toBeUndefined();
  });
});
