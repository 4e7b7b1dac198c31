// Which SIMD instruction set the micro-kernels run with, chosen once per process.
//
// The package is compiled for x86-64-v3 (AVX2 + FMA), which every x86_64 server of the last decade
// runs. CPUs with AVX-512 have twice the registers and twice the vector width, and OpenBLAS uses
// them (on this Zen 5 machine numpy's OpenBLAS runs its SkylakeX kernels). The AVX-512
// micro-kernels live in their own module, PruneKernelsAVX512, compiled for x86-64-v4; they are
// called only when the CPU reports every x86-64-v4 feature, so the same binary still runs on an
// AVX2-only CPU. Nothing else changes with the instruction set: the packing, the loop nest and the
// order in which each element is reduced are the same, so both kernels give bit-identical results
// for the same cache blocking (KernelISATests checks it).
//
// Two conditions, both needed: the CPU supports AVX-512, and the build compiled PruneKernelsAVX512
// for it (`compiledForAVX512`: Package.swift's flags do, a dependent's portable build may not;
// Docs/using-prunekit.md). Otherwise the AVX2 kernels run.
//
// Override: PRUNEKIT_ISA=avx2 makes an AVX-512 machine use the AVX2 kernels (to compare the two,
// or to reproduce a result from an AVX2 machine bit for bit); PRUNEKIT_ISA=avx512 or an unset
// variable picks the best the CPU and the build support.

#if arch(x86_64)
  import PruneKernelsAVX512
#endif

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The SIMD instruction set of the micro-kernels.
public enum KernelISA: String, Sendable, CaseIterable, CustomStringConvertible {
  /// The build's baseline: AVX2 + FMA (x86-64-v3) on x86_64, NEON on arm64.
  case baseline
  /// AVX-512 F, BW, CD, DQ and VL (x86-64-v4): 32 registers of 512 bits. x86_64 only.
  case avx512

  /// The instruction set this process uses: `.avx512` when the CPU supports it, the build compiled
  /// the AVX-512 kernels for it and `PRUNEKIT_ISA` is not `avx2`, otherwise `.baseline`. Read once.
  public static let active: KernelISA = {
    guard avx512Usable else { return .baseline }
    if let value = getenv("PRUNEKIT_ISA"), String(cString: value).lowercased() == "avx2" {
      return .baseline
    }
    return .avx512
  }()

  /// Every instruction set this CPU and this build can run, baseline first (tests run the kernels
  /// of each).
  public static let supported: [KernelISA] = avx512Usable ? [.baseline, .avx512] : [.baseline]

  /// Whether the AVX-512 kernels can run here: the CPU supports them (`cpuSupportsAVX512`) and
  /// their module was compiled for AVX-512 (`compiledForAVX512`, set by the build).
  static let avx512Usable: Bool = cpuSupportsAVX512 && avx512KernelsCompiled

  /// Whether PruneKernelsAVX512 was compiled for x86-64-v4 (false on other architectures).
  static let avx512KernelsCompiled: Bool = {
    #if arch(x86_64)
      return compiledForAVX512
    #else
      return false
    #endif
  }()

  public var description: String {
    switch self {
    case .avx512: return "AVX-512 (x86-64-v4)"
    case .baseline:
      #if arch(x86_64)
        return "AVX2+FMA (x86-64-v3)"
      #else
        return "NEON"
      #endif
    }
  }

  /// Whether the CPU and the operating system support every x86-64-v4 feature. Linux lists a
  /// feature in /proc/cpuinfo only if the kernel also saves its registers (the ZMM state for
  /// AVX-512), which is the condition for using it. Other systems keep the baseline.
  static let cpuSupportsAVX512: Bool = {
    #if arch(x86_64) && os(Linux)
      guard let flags = cpuinfoFlags() else { return false }
      return ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
    #else
      return false
    #endif
  }()
}

#if os(Linux)
  /// The feature flags of the first processor in /proc/cpuinfo (its `flags` line), or nil.
  func cpuinfoFlags() -> Set<Substring>? {
    let fd = open("/proc/cpuinfo", O_RDONLY)
    if fd < 0 { return nil }
    defer { close(fd) }
    // The first processor's entry, flags line included, is a few kilobytes: read at most 64 KiB.
    var bytes = [UInt8](repeating: 0, count: 65536)
    var count = 0
    while count < bytes.count {
      let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
      if n <= 0 { break }
      count += n
    }
    bytes.removeSubrange(count...)
    let text = String(decoding: bytes, as: UTF8.self)
    for line in text.split(separator: "\n") where line.hasPrefix("flags") {
      guard let colon = line.firstIndex(of: ":") else { return nil }
      return Set(line[line.index(after: colon)...].split(separator: " "))
    }
    return nil
  }
#endif
