#!/usr/bin/env python3
"""Checks that transformers loads a model folder written by PruneKit's HuggingFaceExport, and that it
is the same model PruneKit evaluates.

Optional tool: it needs torch, transformers and safetensors, which are NOT project dependencies
(PruneKit itself needs no Python). Use a throwaway virtual environment; CI never runs this script:

    python3 -m venv /tmp/hfvenv
    /tmp/hfvenv/bin/pip install torch transformers safetensors
    /tmp/hfvenv/bin/python scripts/check-hf-load.py DIR [--prune .build/release/prune] [--golden Fixtures/golden/smollm2-golden.json]

What it checks (exit status 1 when a check fails):
  1. AutoTokenizer.from_pretrained(DIR) and AutoModelForCausalLM.from_pretrained(DIR) (float32) load;
  2. every tensor of DIR/model.safetensors is bit-identical in the loaded model (tied head included),
     so the pruned zeros survived; prints the sparsity of the block linear layers;
  3. with --golden (SmolLM2 only): the tokenizer gives the golden ids on the sample texts and on the
     first 2048 tokens of persuasion.txt, and the logits of the golden 128-token input are compared
     with transformers' logits of the original dequantised model (meaningful for a dense export);
  4. perplexity by PruneKit's protocol (text tokenised whole with no BOS/EOS, non-overlapping windows
     of --seqlen tokens from token 0, each run from position 0, the first --windows windows) and,
     with --prune, the same figure from `prune eval --model DIR` (relative difference at most 1e-3).
"""
import argparse
import json
import math
import os
import subprocess
import sys

import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
failures = []


def check(ok, message):
    print(("ok    " if ok else "FAIL  ") + message)
    if not ok:
        failures.append(message)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="the exported folder")
    p.add_argument("--text", default=os.path.join(REPO, "Fixtures/janeausten/prideprejudice.txt"))
    p.add_argument("--seqlen", type=int, default=1024)
    p.add_argument("--windows", type=int, default=16)
    p.add_argument("--prune", help="path of the prune executable, to compare its perplexity")
    p.add_argument("--golden", help="smollm2-golden.json (tokenizer ids and reference logits)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    print(f"loaded {type(model).__name__} and {type(tok).__name__}; transformers {__import__('transformers').__version__},"
          f" torch {torch.__version__}")

    # 2. The file's tensors in the loaded model, bit for bit.
    state = model.state_dict()
    zeros = total = 0
    identical = True
    with safe_open(os.path.join(a.model, "model.safetensors"), framework="pt") as f:
        names = list(f.keys())
        for name in names:
            t = f.get_tensor(name)
            if name not in state or not torch.equal(state[name].view(torch.int32), t.view(torch.int32)):
                identical = False
                print(f"      differs or missing: {name}")
            if t.dim() == 2 and (".layers." in name or ".h." in name):
                zeros += int((t == 0).sum())
                total += t.numel()
    check(identical, f"all {len(names)} tensors of model.safetensors are bit-identical in the loaded model")
    if model.config.tie_word_embeddings:
        head, embed = model.get_output_embeddings().weight, model.get_input_embeddings().weight
        check(torch.equal(head, embed), "the head is tied to the embedding")
    print(f"      block linear layers: {zeros} zeros of {total} ({zeros / max(total, 1):.4%})")

    # 3. Golden tokenizer ids and reference logits (SmolLM2).
    if a.golden:
        g = json.load(open(a.golden))
        bad = [s["text"] for s in g["tokenizer_samples"] if tok(s["text"], add_special_tokens=False).input_ids != s["ids"]]
        check(not bad, f"tokenizer: golden ids on {len(g['tokenizer_samples'])} samples" + (f" (differ: {bad})" if bad else ""))
        persuasion = open(os.path.join(REPO, "Fixtures/janeausten/persuasion.txt"), encoding="utf-8").read()
        ids = tok(persuasion, add_special_tokens=False).input_ids
        check(ids[:2048] == g["persuasion_first_2048_ids"] and len(ids) == g["persuasion_token_count"],
              f"tokenizer: persuasion.txt gives {len(ids)} tokens (golden {g['persuasion_token_count']}), first 2048 ids golden")
        with torch.no_grad():
            z = model(torch.tensor([g["logits_input_ids"]])).logits[0]
        worst = 0.0
        for pos, ref in g["logits"].items():
            row = z[int(pos)]
            worst = max(worst, float((row[:16] - torch.tensor(ref["first16"])).abs().max()), abs(float(row.max()) - ref["max"]))
        x = torch.tensor(g["logits_input_ids"])
        nll = float(torch.nn.functional.cross_entropy(z[:-1], x[1:]))
        print(f"      logits vs golden (transformers on the original dequantised model): max |dz| = {worst:.3e};"
              f" mean NLL {nll:.9f} vs {g['mean_nll_128']:.9f} (|d| = {abs(nll - g['mean_nll_128']):.3e})")

    # 4. Perplexity, PruneKit's protocol.
    text = open(a.text, encoding="utf-8").read()
    ids = torch.tensor(tok(text, add_special_tokens=False).input_ids)
    windows = min(a.windows, len(ids) // a.seqlen)
    total_nll, count = 0.0, 0
    with torch.no_grad():
        for w in range(windows):
            x = ids[w * a.seqlen:(w + 1) * a.seqlen].unsqueeze(0)
            logits = model(x).logits[0, :-1]
            total_nll += float(torch.nn.functional.cross_entropy(logits.double(), x[0, 1:], reduction="sum"))
            count += a.seqlen - 1
    ppl = math.exp(total_nll / count)
    print(f"      transformers: perplexity {ppl:.6f} over {count} predictions ({windows} x {a.seqlen}, {os.path.basename(a.text)})")
    if a.prune:
        out = subprocess.run([a.prune, "eval", "--model", a.model, "--text", a.text, "--seqlen", str(a.seqlen),
                              "--windows", str(windows), "--json", "--quiet"], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout)
        rel = abs(r["perplexity"] - ppl) / ppl
        check(r["tokens"] == count and rel <= 1e-3,
              f"PruneKit: perplexity {r['perplexity']:.6f} over {r['tokens']} predictions; relative difference {rel:.2e}")

    print("FAILED: " + "; ".join(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
