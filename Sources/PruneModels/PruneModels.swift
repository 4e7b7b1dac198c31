// PruneModels: model files (safetensors, GGUF), tokenizer, forward pass and perplexity.
import PruneKernels
import PruneSolvers
