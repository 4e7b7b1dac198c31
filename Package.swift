// swift-tools-version:6.0
//
// PruneKit: a pure-Swift reference implementation of post-training pruning for the linear layers
// of large language models. No package dependencies: the toolchain's standard library, Dispatch,
// Foundation (I/O only) and Swift Testing.
//
// Module layering, one way only:
//
//   PruneKernelsAVX512 (stdlib only: the AVX-512 micro-kernels, x86_64)
//        ↑
//   PruneKernels  (stdlib + Dispatch: Matrix, GEMM, Gram, Cholesky, eigenvalue bound)
//        ↑
//   PruneSolvers  (layer problems, masks, magnitude, Wanda, SparseGPT, ADMM, FISTA, refit, APT, oracles)
//        ↑
//   PruneModels   (Foundation: safetensors, GGUF, tokenizer, forward pass, perplexity)
//        ↑
//   prune         (the command-line tool)          prune-bench (Benchmarks/, the benchmark executable)

import PackageDescription

// MARK: - Code generation flags

// The kernels are written with SIMD8<Float> / SIMD4<Double> and `.addingProduct`. Without AVX2+FMA
// enabled at compile time, x86_64 lowers every fused multiply-add to a scalar `fmaf` libm call and
// the blocked GEMM runs ~160x slower (Docs/kernels.md, "Build flags"). `#if arch` is evaluated on
// the machine that builds the package, which is also the machine that runs it for every native
// build; x86-64-v3 is the AVX2+FMA+BMI2 baseline that every x86_64 server of the last decade has.
// The flag is set in every configuration, so `swift test` in debug also gets real FMA instructions.
// arm64 needs nothing: NEON (with FMA) is its baseline.
//
// The AVX-512 micro-kernels are a module of their own, compiled for x86-64-v4 (AVX-512 F/BW/CD/DQ/VL)
// and called only after PruneKernels has checked that the CPU supports it (KernelISA.swift), so
// the binary still runs on AVX2-only CPUs. That module also enables the Builtin module, for
// LLVM's prefetch (Swift has no prefetch function); on other architectures it is empty.
#if arch(x86_64)
let simdFlags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-march=x86-64-v3"])]
let avx512Flags: [SwiftSetting] = [
  .unsafeFlags(["-Xcc", "-march=x86-64-v4", "-enable-experimental-feature", "BuiltinModule"])
]
#else
let simdFlags: [SwiftSetting] = []
let avx512Flags: [SwiftSetting] = []
#endif

let package = Package(
  name: "PruneKit",
  products: [
    .library(name: "PruneKernels", targets: ["PruneKernels"]),
    .library(name: "PruneSolvers", targets: ["PruneSolvers"]),
    .library(name: "PruneModels", targets: ["PruneModels"]),
    .executable(name: "prune", targets: ["prune"]),
    .executable(name: "prune-bench", targets: ["prune-bench"]),
  ],
  targets: [
    // MARK: - Public API

    .target(name: "PruneKernelsAVX512", swiftSettings: avx512Flags),
    .target(name: "PruneKernels", dependencies: ["PruneKernelsAVX512"], swiftSettings: simdFlags),
    .target(name: "PruneSolvers", dependencies: ["PruneKernels"], swiftSettings: simdFlags),
    .target(name: "PruneModels", dependencies: ["PruneKernels", "PruneSolvers"], swiftSettings: simdFlags),

    // MARK: - Executables

    .executableTarget(
      name: "prune", dependencies: ["PruneKernels", "PruneSolvers", "PruneModels"],
      swiftSettings: simdFlags),
    // Swift 5 language mode: top-level benchmark scripts read globals without actor annotations.
    .executableTarget(
      name: "prune-bench", dependencies: ["PruneKernels", "PruneSolvers", "PruneModels"],
      path: "Benchmarks/prune-bench", swiftSettings: simdFlags + [.swiftLanguageMode(.v5)]),

    // MARK: - Tests

    .target(name: "PruneTestSupport", dependencies: ["PruneKernels"], path: "Tests/PruneTestSupport"),
    .testTarget(
      name: "PruneKernelsTests", dependencies: ["PruneKernels", "PruneTestSupport"],
      swiftSettings: simdFlags),
    .testTarget(
      name: "PruneSolversTests", dependencies: ["PruneSolvers", "PruneKernels", "PruneTestSupport"],
      swiftSettings: simdFlags),
    .testTarget(
      name: "PruneModelsTests",
      dependencies: ["PruneModels", "PruneSolvers", "PruneKernels", "PruneTestSupport"],
      swiftSettings: simdFlags),
  ]
)
