// PruneModels: the transformer. A decoder-only language model (LLaMA, OPT, GPT-2) loaded from a
// GGUF file or a Hugging Face folder, run block by block in Float; perplexity under the evaluation
// protocols; the pruned model written back as a Hugging Face folder; the embedded corpus.
//
// Implementation goals, in order of priority:
//   1. Agreement with transformers: logits within a rounding bound of transformers' float32 output
//      on the golden models, and SmolLM2's perplexity to the fourth digit.
//   2. Determinism: the same tokens give bit-identical logits at any thread count.
//   3. Block by block: `runBlock` hands every linear layer's input to a callback, which is how the
//      pipeline and the oracle capture calibration inputs.
//   4. Speed, from the GEMM: attention and the row-wise operations are written to keep it fed.
//
// Dependencies: PruneFormats (re-exported, with PruneSolvers and PruneKernels); Foundation.
//
// Files:
//   Forward/ForwardConfig.swift    the hyper-parameters the forward pass runs on (from ModelConfig)
//   Forward/TransformerLM.swift    the model: embedding, blocks, head, NLL
//   Forward/ForwardOps.swift       norms, activations, RoPE, causal attention
//   Forward/ForwardError.swift     why a model could not be built or run
//   Forward/SyntheticModel.swift   seeded random weights for any config
//   ModelLoader.swift              a model and its tokenizer from a GGUF file or a Hugging Face folder
//   Perplexity.swift               perplexity over non-overlapping windows
//   Corpus.swift                   the embedded Austen novels and the evaluation protocols
//   HuggingFaceExport.swift        a model in memory written as a Hugging Face folder
//   GGUFHuggingFaceFiles.swift     config.json and tokenizer files rebuilt from GGUF metadata
//   SyntheticModelFolder.swift     small seeded LLaMA folders for tests (`prune make-model`)

@_exported import PruneFormats
