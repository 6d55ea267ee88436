import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../agent/models/canonical.js';
import { compareVersions } from '../../agent/models/version-order.js';

describe('model version order', () => {
  it.each([
    ['1.10.0', '1.9.2', 1],
    ['1.0', '1.0.0', 0],
    ['2.0.0-rc1', '2.0.0', -1],
    ['2.0.0-rc2', '2.0.0-rc1', 1],
    ['1.0.1', '1.0.0', 1],
    ['0.9', '1', -1],
  ])('%s vs %s', (a, b, expected) => {
    expect(compareVersions(a, b)).toBe(expected);
    expect(compareVersions(b, a)).toBe(-expected || 0);
  });
});

describe('canonical JSON', () => {
  it('sorts keys at every level and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[3,{"y":2,"z":1}]},"b":1}');
  });
});
