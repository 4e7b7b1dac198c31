// PruneSolvers: layer-wise pruning of one linear layer. Given W [out × in] and the Gram G = XᵀX of
// its calibration inputs, find a sparse Ŵ (unstructured or N:M) whose outputs stay close to W's:
// minimise ‖X*Ŵᵀ − XWᵀ‖²_F over the pattern. Every method of the field lives here, one file each.
//
// Implementation goals, in order of priority:
//   1. Each file states its method's objective on its first doc line, its steps as math and its
//      defaults with their source; a property test beside it checks what the method promises.
//   2. Exactness and determinism: the same problem gives bit-identical output at any thread count;
//      masks break ties by index; every damping is a named, reported option.
//   3. One entry point (`prune(_:method:pattern:options:mask:)`) with the numerical safeguards,
//      shared by the CLI, the oracle, the pipeline and the benchmarks.
//   4. Speed, from PruneKernels: no method re-forms a product it can keep.
//
// Dependencies: PruneKernels (re-exported). No Foundation.
//
// Files:
//   LayerProblem.swift      the problem: W, G* (and K for error correction), its checks and error
//   SparsityPattern.swift   unstructured ratios (per row or per matrix) and N:M
//   Mask.swift              the kept/pruned structure and its checks
//   Selection.swift         exact k-smallest selection with index tie-breaking
//   PruningMethod.swift     the methods by name; PruningError; helpers every method shares
//   PruningResult.swift     the pruned weight, its mask and the report
//   MethodOptions.swift     every method option, declared once: names, values, defaults, help
//   Pruner.swift            `prune`: any method by name with its options, the safeguards
//   NumericalChecks.swift   semidefiniteness, power-of-two scaling, finiteness of results
//   Magnitude.swift         smallest |Wᵢⱼ|
//   Wanda.swift             smallest |Wᵢⱼ|·‖xⱼ‖ per row
//   SparseGPT.swift         Optimal Brain Surgeon column sweep with lazy batches
//   ADMM.swift              ADMM weight update with gradual mask selection
//   ALPS.swift              ALPS: ADMM with a support-driven ρ schedule, then a CG refit
//   FISTA.swift             FISTAPruner: ℓ1-regularised reconstruction, λ by bisection
//   Refit.swift             exact masked least squares on a given mask
//   APT.swift               optimal multi-weight removal, blockwise
//   BruteForce.swift        every admissible mask, each refit exactly (tiny problems)
//   LassoKKT.swift          how far a candidate is from the lasso's optimality conditions
//   SparseLLM.swift         feed-forward layers pruned together through auxiliary activations

@_exported import PruneKernels
