/**
 * Orders model versions: dotted numbers compare numerically (1.10.0 > 1.9.2), a missing part
 * counts as 0, and a pre-release suffix ("2.0.0-rc1") sorts before its release. Versions that
 * are not dotted numbers compare as text, so the order stays total and deterministic.
 */
export function compareVersions(a: string, b: string): number {
  const pa = /^(\d+(?:\.\d+)*)(?:-(.+))?$/.exec(a);
  const pb = /^(\d+(?:\.\d+)*)(?:-(.+))?$/.exec(b);
  if (!pa || !pb) return a < b ? -1 : a > b ? 1 : 0;
  const na = pa[1]!.split('.').map(Number);
  const nb = pb[1]!.split('.').map(Number);
  for (let i = 0; i < Math.max(na.length, nb.length); i++) {
    const diff = (na[i] ?? 0) - (nb[i] ?? 0);
    if (diff !== 0) return Math.sign(diff);
  }
  const sa = pa[2];
  const sb = pb[2];
  if (sa === sb) return 0;
  if (sa === undefined) return 1;
  if (sb === undefined) return -1;
  return sa < sb ? -1 : 1;
}
