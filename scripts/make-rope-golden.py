#!/usr/bin/env python3
"""Writes the golden files of RoPE scaling and sliding-window attention: four tiny random models,
each a folder under Fixtures/golden/ with config.json, model.safetensors and reference_logits.json
(the layout of llama-tiny and the other golden models, read by GoldenModel in
Tests/PruneModelsTests/ForwardGoldenTests.swift):

    llama-rope-linear   LlamaForCausalLM, rope_scaling linear (factor 4)
    llama-rope-llama3   LlamaForCausalLM, rope_scaling llama3 (factor 8, low 1, high 4, original 64)
    llama-rope-yarn     LlamaForCausalLM, rope_scaling yarn (factor 4, original 64, attention factor
                        and betas left to their defaults)
    mistral-window      MistralForCausalLM, sliding_window 16 over a 48-token input

Optional tool: it needs torch and transformers, which are NOT project dependencies. Use a throwaway
virtual environment; CI never runs this script, the tests only read its output
(Tests/PruneModelsTests/ForwardRopeWindowGoldenTests.swift):

    python3 -m venv /tmp/venv-rope
    /tmp/venv-rope/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/venv-rope/bin/pip install transformers safetensors
    /tmp/venv-rope/bin/python scripts/make-rope-golden.py [--out DIR]

Every model has the same shape: hidden 32, 2 blocks, 2 query heads of 16 sharing one key/value
head, SwiGLU 64, vocabulary 128, tied head (about 90 KB of float32 weights). Head size 16 gives
eight rotation frequencies with wavelengths 2π·10000^(2i/16) ≈ 6, 20, 63, 199, ... positions, so
that with an original context of 64 every band of llama3 (kept, blended, divided) and both ends of
the YaRN ramp are used. The weights are drawn with a seeded torch generator from N(0, 0.25²)
(initializer_range 0.25, ten times transformers' default) so that attention is sharp and a wrong
frequency or window moves the logits far beyond rounding (the tests check that too). The input is
the same fixed 48 ids for every model; the logits at positions 0, 1, 23 and 47 and the mean
next-token NLL are stored, as float32 values printed in full.
"""
import argparse
import json
import os
import sys

try:
    import torch
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM
except ImportError:
    sys.exit("make-rope-golden: torch and transformers are not installed. Hint: see the script's docstring.")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEQUENCE = 48
POSITIONS = [0, 1, 23, 47]
SHAPE = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=16,
    vocab_size=128,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    initializer_range=0.25,
    bos_token_id=1,
    eos_token_id=2,
)

# name → (config class, model class, extra config keys, seed)
MODELS = {
    "llama-rope-linear": (
        LlamaConfig,
        LlamaForCausalLM,
        dict(rope_parameters={"rope_type": "linear", "factor": 4.0, "rope_theta": 10000.0}),
        16001,
    ),
    "llama-rope-llama3": (
        LlamaConfig,
        LlamaForCausalLM,
        dict(
            rope_parameters={
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
                "rope_theta": 10000.0,
            }
        ),
        16002,
    ),
    "llama-rope-yarn": (
        LlamaConfig,
        LlamaForCausalLM,
        dict(
            rope_parameters={
                "rope_type": "yarn",
                "factor": 4.0,
                "original_max_position_embeddings": 64,
                "rope_theta": 10000.0,
            }
        ),
        16003,
    ),
    "mistral-window": (
        MistralConfig,
        MistralForCausalLM,
        dict(sliding_window=16, rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        16004,
    ),
}


def input_ids():
    # 48 distinct-looking ids from a fixed linear congruence (no generator involved).
    return [1] + [(37 * i * i + 11 * i + 5) % 128 for i in range(1, SEQUENCE)]


def make(name, out):
    config_class, model_class, extra, seed = MODELS[name]
    config = config_class(**SHAPE, **extra)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = model_class(config).float().eval()
    # transformers' init: N(0, initializer_range²) for every linear and the embedding; the norms'
    # weights are drawn too (around 1), so that they are not all exact ones.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "norm" in n:
                p.copy_(1 + 0.1 * torch.randn_like(p))
    folder = os.path.join(out, name)
    os.makedirs(folder, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    for extra_file in ["generation_config.json"]:
        path = os.path.join(folder, extra_file)
        if os.path.exists(path):
            os.remove(path)
    ids = input_ids()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    nll = torch.nn.functional.cross_entropy(logits[:-1].double(), torch.tensor(ids[1:]), reduction="mean").item()
    reference = {
        "model": name,
        "input_ids": ids,
        "logits_shape": list(logits.shape),
        "logits": {str(p): [float(v) for v in logits[p]] for p in POSITIONS},
        "mean_nll": nll,
        "made_with": f"transformers {transformers.__version__}, torch {torch.__version__}, float32 forward (eager attention)",
    }
    with open(os.path.join(folder, "reference_logits.json"), "w") as f:
        json.dump(reference, f, indent=1)
    print(f"{name}: mean NLL {nll:.6f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "Fixtures", "golden"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    for name in MODELS:
        make(name, args.out)


if __name__ == "__main__":
    main()
