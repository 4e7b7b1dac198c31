// PruneFormats: the files PruneKit reads and writes, with nothing above the bytes. A model arrives
// as safetensors (one file or sharded) or GGUF, with a config.json and a tokenizer; results leave as
// safetensors files and JSON reports, written all or nothing.
//
// Implementation goals, in order of priority:
//   1. Strict reading: every parser validates what it reads as strictly as the format's reference
//      implementation and throws a typed error whose description is one line naming the file (and
//      tensor or key) with a hint; hostile input never traps or allocates without bound (each
//      parser has a fuzz target, Tests/Fuzz/, and its past crashes are replayed by the tests).
//   2. Exact values: every dtype decodes to the value the reference library gives, bit for bit.
//   3. Nothing lost: every output of the package and the CLI goes through the one atomic writer
//      (AtomicOutput: a temporary sibling, renamed into place), so a killed or failed write leaves
//      the old file or folder, or nothing.
//   4. No dependencies beyond Foundation's file I/O (SHA-256 is written out).
//
// Dependencies: PruneKernels (Matrix) and PruneSolvers (Mask), both re-exported; Foundation.
//
// Files:
//   Safetensors.swift   the safetensors format: reader (validated header, F32/F64/F16/BF16/U8/BOOL),
//                       writer
//   GGUF.swift          the GGUF format: metadata, tensor infos, LLaMA config, q/k row un-permutation
//   GGUFQuants.swift    GGUF tensor types decoded to Float: floats, Q8_0/Q4_x/Q5_x/IQ4_NL, K-quants
//   TensorSource.swift  tensors by name from any checkpoint, converted to Float
//   ModelConfig.swift   Hugging Face config.json of LLaMA, OPT and GPT-2 (Codable, typed errors):
//                       the one parser of config.json (the forward pass derives its config from it)
//   Tokenizer.swift     byte-level BPE from tokenizer.json or GGUF metadata
//   SHA256.swift        SHA-256 (FIPS 180-4) for embedded data and downloaded models
//   AtomicOutput.swift  the one writer of output files and folders (all or nothing), temporary
//                       names, clean-up of the temporaries of killed runs
//   InputFiles.swift    reading the files a user names; reasons and hints of failed reads
//   OutputSafety.swift  up-front checks of output folders (writable, room); reasons and hints of
//                       failed writes
//   JSON.swift          reports as JSON with sorted keys; JSON parse errors as one line; the JSON
//                       files of a model folder; PruneKit's own files (snake_case, versioned,
//                       read back or refused as older), PruneKitVersion

@_exported import PruneKernels
@_exported import PruneSolvers
