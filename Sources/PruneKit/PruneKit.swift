// PruneKit: the umbrella module. `import PruneKit` gives every public module of the package, as
// swift-numerics' `Numerics` does; import a single module instead to depend on less.
//
//   PruneKernels    dense linear algebra: Matrix, GEMM, Gram, Cholesky, SplitMix64
//   PruneSolvers    one linear layer: problems, patterns, masks, every pruning method, oracles
//   PruneFormats    safetensors, GGUF, tokenizer, config.json, tensor sources, SHA-256, output files
//   PruneModels     the transformer: forward passes, perplexity, loading, export, corpus
//   PruneOracle     layer-problem files, `prune layer`, `prune verify`, `prune vectors`
//   PrunePipeline   whole-model pruning: drivers, checkpoints, `prune model`, merge, sweep

@_exported import PruneFormats
@_exported import PruneKernels
@_exported import PruneModels
@_exported import PruneOracle
@_exported import PrunePipeline
@_exported import PruneSolvers
