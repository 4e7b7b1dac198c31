// PruneOracle: PruneKit as the oracle other backends check themselves against, through files
// only. A layer problem travels as a safetensors file; `prune layer` solves it with any method,
// `prune verify` certifies another backend's answer, `prune vectors` writes problems with known
// answers, and a suite of answers is certified as a whole.
//
// Implementation goals, in order of priority:
//   1. A verdict never says PASS for less than it checked; every figure behind it is in the
//      certificate, with the threshold it was held to.
//   2. The file contract (Docs/layer-problem-file.md) is checked strictly, with one-line errors.
//   3. Known answers are exact: brute-force optima and closed-form lasso solutions, with negative
//      controls that must fail.
//   4. Independent of the pipeline: this module never imports PrunePipeline.
//
// Dependencies: PruneModels (re-exported; the real test vectors are cut from SmolLM2), Foundation.
//
// Files:
//   LayerProblemFile.swift       the layer-problem, mask and pruned-weight file contract
//   LayerJob.swift               `prune layer`: one problem, one method, the outputs written
//   Verify.swift                 `prune verify`: the checks and the certificate of one candidate
//   TestVectors.swift            `prune vectors`: the suite and its manifest
//   SuiteVerification.swift      `prune verify --manifest`: a whole suite certified
//   SyntheticLayerProblem.swift  seeded layer problems that look like real ones
//
// Its JSON files are PruneKit's (`reportJSON`, `reportJSONDecoder`, `PruningReportJSON` and
// `PruneKitVersion` in PruneFormats/JSON.swift), shared with the pipeline's reports.

@_exported import PruneModels
