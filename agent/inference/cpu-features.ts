import fs from 'node:fs';
import os from 'node:os';

/**
 * The CPU features that decide how onnxruntime runs int8 (u8s8) kernels. They matter because
 * the same int8 model gives slightly different outputs, calibrated thresholds and speeds on
 * different CPUs: AVX2 without VNNI multiplies u8 x s8 pairs with vpmaddubsw, whose 16-bit
 * intermediate sum can saturate; AVX-512 VNNI and AVX-VNNI (vpdpbusd) and ARM's dot product
 * (sdot/udot, flag asimddp) accumulate in 32 bits and cannot.
 */
export interface CpuInt8Features {
  model: string;
  arch: string;
  avx2: boolean;
  avx512vnni: boolean;
  avxvnni: boolean;
  /** ARM dot-product instructions (asimddp). */
  armDotProduct: boolean;
  /** The int8 path onnxruntime takes on this CPU. */
  int8Path: 'vnni' | 'avx2' | 'arm-dotprod' | 'generic';
}

/** Reads the flags from /proc/cpuinfo text (x86 "flags", ARM "Features"). */
export function parseCpuInt8Features(cpuinfo: string, arch: string = process.arch): CpuInt8Features {
  const flags = new Set<string>();
  for (const match of cpuinfo.matchAll(/^(?:flags|Features)\s*:\s*(.*)$/gm)) for (const flag of match[1]!.split(/\s+/)) if (flag) flags.add(flag);
  const model = /^(?:model name|Processor|CPU part)\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown';
  const avx512vnni = flags.has('avx512_vnni');
  const avxvnni = flags.has('avx_vnni');
  const armDotProduct = flags.has('asimddp');
  const avx2 = flags.has('avx2');
  const int8Path = avx512vnni || avxvnni ? 'vnni' : armDotProduct ? 'arm-dotprod' : avx2 ? 'avx2' : 'generic';
  return { model, arch, avx2, avx512vnni, avxvnni, armDotProduct, int8Path };
}

let cached: CpuInt8Features | undefined;

/** This machine's int8 features (read once; /proc/cpuinfo does not change while we run). */
export function cpuInt8Features(): CpuInt8Features {
  if (cached) return cached;
  let text = '';
  try {
    text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    text = ''; // not Linux: the flags are unknown and the path reads as generic
  }
  cached = parseCpuInt8Features(text);
  return cached;
}

/** One line for benchmark output and logs: "AMD EPYC, x86_64, int8 path avx2 (avx2 yes, avx512_vnni no, avx_vnni no)". */
export function describeCpuInt8(features: CpuInt8Features = cpuInt8Features()): string {
  const yes = (value: boolean): string => (value ? 'yes' : 'no');
  const flags =
    features.arch === 'arm64'
      ? `asimddp ${yes(features.armDotProduct)}`
      : `avx2 ${yes(features.avx2)}, avx512_vnni ${yes(features.avx512vnni)}, avx_vnni ${yes(features.avxvnni)}`;
  return `${features.model}, ${features.arch}, int8 path ${features.int8Path} (${flags})`;
}
