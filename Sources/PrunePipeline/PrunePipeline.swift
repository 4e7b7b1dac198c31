// PrunePipeline: a whole model pruned layer by layer. Blocks are walked in order; each block's
// linear layers are pruned against calibration inputs chosen by the schedule (sequential,
// corrected or SparseLLM's), the result checkpointed after every block, and the pruned model
// evaluated and written as a Hugging Face folder. Sweeps run many methods and draw the chart.
//
// Implementation goals, in order of priority:
//   1. Nothing lost: a killed run resumes from its checkpoint to a bit-identical result; outputs
//      appear whole or not at all; a run refuses up front what would fail later (paths, space).
//   2. Determinism: the same command gives the same bytes at any thread count and `--jobs`.
//   3. Progress and reports: every layer's error, sparsity, damping and time, as events the CLI
//      prints (this module prints nothing) and as a JSON report (pruning-report.json, sweep.json)
//      in PruneKit's form, read back with the same convention (PruneFormats/JSON.swift).
//   4. Speed: blocks in parallel where the schedule allows it.
//
// Dependencies: PruneModels (re-exported), Foundation. Not PruneOracle: the oracle and the pipeline
// are independent of each other.
//
// Files:
//   BlockDrivers.swift        the schedules: which inputs each layer of a block is pruned against
//   SparseLLMDriver.swift     SparseLLM's schedule: attention locally, the FFN jointly
//   ModelPruner.swift         the loop over blocks, with checkpoints and parallel blocks
//   ActivationSpill.swift     the calibration activations on disk when they do not fit the memory budget
//   PruningCheckpoint.swift   the checkpoint folder beside the output
//   ModelJob.swift            `prune model`: load, calibrate, prune, evaluate, write
//   ModelMerge.swift          `prune merge`: block ranges pruned apart joined into one model
//   Sweep.swift               `prune sweep` and the main job: methods × sparsities, resumable
//   SVGChart.swift            the sweep's chart as a standalone SVG
//   CostModel.swift           the floor: the work each schedule needs, priced at measured rates

@_exported import PruneModels
