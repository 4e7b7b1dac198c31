// swift-tools-version:6.2
//
// PruneKit: a pure-Swift reference implementation of post-training pruning for the linear layers
// of large language models. No package dependencies: the toolchain's standard library, Dispatch,
// Foundation (I/O only) and Swift Testing.
//
// Modules, one concern each; an arrow points at what a module depends on, one way only:
//
//   PruneKit            the umbrella: `import PruneKit` re-exports every public module below
//
//   prune, prune-bench  the command-line tool and the benchmarks
//        │
//   PrunePipeline       whole-model pruning: block drivers, ModelPruner, checkpoints, `prune model`,
//        │              `prune merge`, `prune sweep`, the sweep chart, the pipeline's cost model
//        │   PruneOracle    the oracle: layer-problem files, `prune layer`, `prune verify`,
//        │        │         `prune vectors`, suite certification (never depends on the pipeline)
//        ▼        ▼
//   PruneModels         the transformer: forward passes, perplexity, loading a model, Hugging Face
//        │              export, the embedded corpus and evaluation protocols
//   PruneFormats        file formats: safetensors, GGUF, tokenizer, config.json, tensor sources,
//        │              SHA-256, all-or-nothing output files
//   PruneSolvers        one linear layer: problems, patterns, masks, every pruning method, oracles
//        │
//   PruneKernels        dense linear algebra: Matrix, GEMM, Gram, Cholesky, SplitMix64
//        │
//   PruneKernelsAVX512  the AVX-512 micro-kernels (x86_64), called by PruneKernels when the CPU has them
//
// PruneFormats depends on PruneKernels and PruneSolvers only for the types it decodes into
// (Matrix, masks); PruneOracle and PrunePipeline both sit on PruneModels, side by side.

import PackageDescription

// MARK: - Code generation flags

// The kernels are written with SIMD8<Float> / SIMD4<Double> and `.addingProduct`. Without AVX2+FMA
// enabled at compile time, x86_64 lowers every fused multiply-add to a scalar `fmaf` libm call and
// the blocked GEMM runs ~160x slower (Docs/kernels.md#build-flags). x86-64-v3 is the
// AVX2+FMA+BMI2 baseline that every x86_64 server of the last decade has. The flag is set in every
// configuration (unless PRUNEKIT_NATIVE_FLAGS=0, below), so `swift test` in debug also gets real
// FMA instructions. arm64 needs nothing: NEON (with FMA) is its baseline.
//
// The AVX-512 micro-kernels are a module of their own, compiled for x86-64-v4 (AVX-512
// F/BW/CD/DQ/VL) and called only after PruneKernels has checked that the CPU supports it
// (KernelISA.swift), so the binary still runs on AVX2-only CPUs. The define
// PRUNEKIT_AVX512_COMPILED, set beside -march=x86-64-v4, tells KernelISA that the module really
// was compiled for AVX-512 (Swift code cannot see its target's CPU features). That module also
// enables the Builtin module, for LLVM's prefetch (Swift has no prefetch function).
//
// As a versioned dependency. `-march` can only be passed as `unsafeFlags`, and SwiftPM refuses a
// dependency by version whose targets use them ("the target 'PruneKernels' in product 'PruneKit'
// contains unsafe build flags") unless, since Swift 6.2, the dependency's manifest declares
// swift-tools-version 6.2 or later; then it builds the dependency with its own flags. That is why
// this manifest declares 6.2: a package that depends on PruneKit `from:` a version gets the code
// this checkout builds (AVX2, and the AVX-512 kernels where the CPU has them) from a plain
// `swift build -c release`, and needs Swift 6.2 or later. (An experimental feature is not an
// unsafe flag; a `.define` neither.) Docs/using-prunekit.md has the dependent's side, with the
// measurements; Examples/oracle-consumer is such a dependent, built by scripts/check-consumer.sh.
//
// PRUNEKIT_NATIVE_FLAGS=0 in the environment of `swift build` (or `swift test`) leaves out
// every -march flag and the define: a portable build, in which the command line chooses the CPU
// (`-Xswiftc -Xcc -Xswiftc -march=x86-64-v3`, the commands are in Docs/using-prunekit.md) and the
// AVX2 kernels run unless PRUNEKIT_AVX512_COMPILED is defined there too. Without any CPU flag the
// results are the same bits, ~160x slower. Any other value, or none, keeps the flags.
let nativeFlags = Context.environment["PRUNEKIT_NATIVE_FLAGS"] != "0"

#if arch(x86_64)
  let simdFlags: [SwiftSetting] = nativeFlags ? [.unsafeFlags(["-Xcc", "-march=x86-64-v3"])] : []
  let avx512Flags: [SwiftSetting] =
    [.enableExperimentalFeature("BuiltinModule")]
    + (nativeFlags ? [.unsafeFlags(["-Xcc", "-march=x86-64-v4"]), .define("PRUNEKIT_AVX512_COMPILED")] : [])
#else
  let simdFlags: [SwiftSetting] = []
  let avx512Flags: [SwiftSetting] = []
#endif

let package = Package(
  name: "PruneKit",
  products: [
    .library(name: "PruneKit", targets: ["PruneKit"]),
    .library(name: "PruneKernels", targets: ["PruneKernels"]),
    .library(name: "PruneSolvers", targets: ["PruneSolvers"]),
    .library(name: "PruneFormats", targets: ["PruneFormats"]),
    .library(name: "PruneModels", targets: ["PruneModels"]),
    .library(name: "PruneOracle", targets: ["PruneOracle"]),
    .library(name: "PrunePipeline", targets: ["PrunePipeline"]),
    .executable(name: "prune", targets: ["prune"]),
    .executable(name: "prune-bench", targets: ["prune-bench"]),
  ],
  targets: [
    // MARK: - Public API

    .target(name: "PruneKernelsAVX512", swiftSettings: avx512Flags),
    .target(name: "PruneKernels", dependencies: ["PruneKernelsAVX512"], swiftSettings: simdFlags),
    .target(name: "PruneSolvers", dependencies: ["PruneKernels"], swiftSettings: simdFlags),
    .target(name: "PruneFormats", dependencies: ["PruneKernels", "PruneSolvers"], swiftSettings: simdFlags),
    .target(name: "PruneModels", dependencies: ["PruneFormats"], swiftSettings: simdFlags),
    .target(name: "PruneOracle", dependencies: ["PruneModels"], swiftSettings: simdFlags),
    .target(name: "PrunePipeline", dependencies: ["PruneModels"], swiftSettings: simdFlags),
    .target(name: "PruneKit", dependencies: ["PrunePipeline", "PruneOracle"], swiftSettings: simdFlags),

    // MARK: - Executables

    .executableTarget(name: "prune", dependencies: ["PruneKit"], swiftSettings: simdFlags),
    // Swift 5 language mode: top-level benchmark scripts read globals without actor annotations.
    .executableTarget(
      name: "prune-bench", dependencies: ["PruneKit"],
      path: "Benchmarks/prune-bench", swiftSettings: simdFlags + [.swiftLanguageMode(.v5)]),

    // MARK: - Tests

    .target(name: "PruneTestSupport", dependencies: ["PruneFormats"], path: "Tests/PruneTestSupport"),
    .testTarget(
      name: "PruneKernelsTests", dependencies: ["PruneKernels", "PruneTestSupport"], swiftSettings: simdFlags),
    .testTarget(
      name: "PruneSolversTests", dependencies: ["PruneSolvers", "PruneTestSupport"], swiftSettings: simdFlags),
    .testTarget(
      name: "PruneFormatsTests", dependencies: ["PruneFormats", "PruneTestSupport"], swiftSettings: simdFlags),
    .testTarget(
      name: "PruneModelsTests", dependencies: ["PruneModels", "PruneTestSupport"], swiftSettings: simdFlags),
    .testTarget(
      name: "PruneOracleTests", dependencies: ["PruneOracle", "PruneTestSupport"], swiftSettings: simdFlags),
    .testTarget(
      name: "PrunePipelineTests", dependencies: ["PrunePipeline", "PruneOracle", "PruneTestSupport"],
      swiftSettings: simdFlags),
    // The command line of `prune`: its parser, and every command's declaration and usage text
    // (the executable's internals, by @testable import; Tests/cli-smoke.sh runs the binary itself).
    .testTarget(name: "PruneCLITests", dependencies: ["prune", "PruneKit"], swiftSettings: simdFlags),
    // Every document and section that the sources, tests, scripts and pages cite exists.
    .testTarget(name: "DocumentationTests", dependencies: ["PruneTestSupport"]),
  ]
)
