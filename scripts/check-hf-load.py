#!/usr/bin/env python3
"""Checks that transformers loads a model folder written by PruneKit (`prune model`, `prune export`), in
the float type of its files, and that the loaded model holds exactly the tensors of the files.

Optional tool: it needs numpy, torch and transformers, which are NOT project dependencies (PruneKit
itself needs no Python). Use a throwaway virtual environment; CI never runs this script:

    python3 -m venv /tmp/venv-hf
    /tmp/venv-hf/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/venv-hf/bin/pip install transformers safetensors numpy
    /tmp/venv-hf/bin/python scripts/check-hf-load.py DIR [--prune .build/release/prune]
        [--text FILE --seqlen L --windows N] [--golden Fixtures/golden/smollm2-golden.json]

What it checks (exit status 0 only when every check passes, 1 otherwise):
  1. The shards, read independently of PruneKit and of the safetensors package: each file's 8-byte
     little-endian header length, its JSON header, data offsets that tile the data area in order
     with no gap or overlap, sizes that match dtype x shape; with model.safetensors.index.json, its
     weight_map names exactly the tensors of exactly the listed shards (one shard: model.safetensors).
     Every float tensor has the same dtype (F32, BF16 or F16): "the file's dtype".
  2. AutoModelForCausalLM.from_pretrained(DIR, dtype="auto") loads, and every parameter of the
     loaded model has the file's dtype (so config.json's torch_dtype agrees with the shards).
  3. EVERY tensor of the loaded model's state dict equals its tensor in the shards bit for bit (the
     raw 16- or 32-bit patterns, so -0, NaN payloads and the pruned zeros count); a tied head
     (lm_head.weight absent from the files) equals the files' embed_tokens.weight; and every tensor
     of the files is in the model. Prints the share of zeros in the block linear layers.
  4. A forward pass on a few tokens in the file's dtype gives finite logits.
  5. Perplexity by PruneKit's protocol (the text tokenised whole with no BOS/EOS, non-overlapping
     windows of --seqlen tokens from token 0, the first --windows windows): once in the file's dtype
     (torch's BF16/F16 arithmetic, reported only) and once with the same weights widened to float32
     (exact), the arithmetic PruneKit uses. With --prune, `prune eval --model DIR` on the same
     windows: the float32 figure must agree within a relative 1e-3 (the order of float32 sums
     differs, nothing else); the relative difference of the file-dtype figure is printed.
  6. With --golden (SmolLM2 only): the tokenizer gives the golden ids on the sample texts and on
     persuasion.txt; the float32 logits of the golden 128-token input are printed against
     transformers' logits of the original dequantised model (close only for a dense F32 output).

What it proves: a folder PruneKit writes is a Hugging Face checkpoint transformers loads in its own
dtype, with the very weights (and pruned zeros) PruneKit wrote and evaluates.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
failures = []

# safetensors dtype -> (element size, numpy type of the raw bits, torch dtype)
DTYPES = {
    "F32": (4, np.uint32, torch.float32),
    "BF16": (2, np.uint16, torch.bfloat16),
    "F16": (2, np.uint16, torch.float16),
}


def check(ok, message):
    print(("ok    " if ok else "FAIL  ") + message)
    if not ok:
        failures.append(message)


def read_shard(path):
    """{name: (dtype, shape, raw bits as a numpy array)} of one safetensors file, parsed by hand."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: shorter than the 8-byte header length")
    n = int.from_bytes(blob[:8], "little")
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} runs past the file ({len(blob)} bytes)")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data = memoryview(blob)[8 + n:]
    tensors = {}
    spans = []
    for name, e in header.items():
        dtype, shape, (begin, end) = e["dtype"], e["shape"], e["data_offsets"]
        if dtype not in DTYPES:
            raise ValueError(f"{path}: {name} has dtype {dtype}, not one PruneKit writes")
        size, bits, _ = DTYPES[dtype]
        count = math.prod(shape)
        if end - begin != count * size or begin < 0 or end > len(data):
            raise ValueError(f"{path}: {name} spans [{begin}, {end}) for {count} x {size} bytes")
        tensors[name] = (dtype, shape, np.frombuffer(data[begin:end], dtype=np.dtype(bits).newbyteorder("<")))
        spans.append((begin, end, name))
    spans.sort()
    at = 0
    for begin, end, name in spans:
        if begin != at:
            raise ValueError(f"{path}: {name} starts at {begin}, not at {at} (a gap or an overlap)")
        at = end
    if at != len(data):
        raise ValueError(f"{path}: the tensors end at {at}, the data area at {len(data)}")
    return tensors


def read_folder(folder):
    """Every tensor of the folder's shards, with the index checked against the shards."""
    index_path = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index_path):
        weight_map = json.load(open(index_path))["weight_map"]
        shards = sorted(set(weight_map.values()))
    else:
        weight_map, shards = None, ["model.safetensors"]
    tensors = {}
    for shard in shards:
        for name, t in read_shard(os.path.join(folder, shard)).items():
            if name in tensors:
                raise ValueError(f"{name} is in two shards")
            if weight_map is not None and weight_map.get(name) != shard:
                raise ValueError(f"{name} is in {shard}, the index says {weight_map.get(name)}")
            tensors[name] = t
    if weight_map is not None and set(weight_map) != set(tensors):
        raise ValueError(f"the index names {len(weight_map)} tensors, the shards hold {len(tensors)}")
    return tensors, shards


def bits_of(t):
    """The raw bit patterns of a torch tensor as a flat little-endian numpy array."""
    t = t.detach().contiguous().cpu()
    if t.element_size() == 4:
        return t.view(torch.int32).numpy().view(np.uint32).reshape(-1)
    return t.view(torch.int16).numpy().view(np.uint16).reshape(-1)


def perplexity(model, ids, seqlen, windows):
    total_nll, count = 0.0, 0
    with torch.no_grad():
        for w in range(windows):
            x = ids[w * seqlen:(w + 1) * seqlen].unsqueeze(0)
            logits = model(x).logits[0, :-1]
            total_nll += float(torch.nn.functional.cross_entropy(logits.double(), x[0, 1:], reduction="sum"))
            count += seqlen - 1
    return math.exp(total_nll / count), count


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="the folder PruneKit wrote")
    p.add_argument("--text", default=os.path.join(REPO, "Fixtures/janeausten/prideprejudice.txt"))
    p.add_argument("--seqlen", type=int, default=512)
    p.add_argument("--windows", type=int, default=4)
    p.add_argument("--prune", help="path of the prune executable, to compare its perplexity")
    p.add_argument("--golden", help="smollm2-golden.json (tokenizer ids, reference logits)")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}, numpy {np.__version__}")

    # 1. The shards, parsed by hand.
    try:
        files, shards = read_folder(a.model)
    except (ValueError, KeyError, OSError) as e:
        check(False, f"the shards are well formed: {e}")
        print("FAILED: " + "; ".join(failures))
        return 1
    dtypes = sorted({t[0] for t in files.values()})
    check(len(dtypes) == 1, f"{len(files)} tensors in {len(shards)} shard(s), dtype {', '.join(dtypes)}")
    file_dtype = DTYPES[dtypes[0]][2]

    # 2. transformers loads it in the file's dtype.
    tok = AutoTokenizer.from_pretrained(a.model)
    try:
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype="auto").eval()
    except TypeError:  # transformers before 4.56 spells it torch_dtype
        model = AutoModelForCausalLM.from_pretrained(a.model, torch_dtype="auto").eval()
    loaded = sorted({str(q.dtype) for q in model.parameters()})
    check(loaded == [str(file_dtype)], f"loaded {type(model).__name__} with dtype=\"auto\": parameters {', '.join(loaded)}"
          f" (config.json torch_dtype {model.config.to_dict().get('torch_dtype', model.config.to_dict().get('dtype'))})")

    # 3. Every tensor, bit for bit.
    state = model.state_dict()
    differ, seen = [], set()
    for name, t in state.items():
        source = name
        if source not in files and name == "lm_head.weight" and model.config.tie_word_embeddings:
            source = "model.embed_tokens.weight"
        if source not in files:
            differ.append(f"{name} (not in the files)")
            continue
        seen.add(source)
        dtype, shape, raw = files[source]
        if list(t.shape) != shape or t.dtype != DTYPES[dtype][2] or not np.array_equal(bits_of(t), raw):
            differ.append(name)
    missing = sorted(set(files) - seen)
    for name in differ + [f"{m} (in the files, not in the model)" for m in missing]:
        print(f"      differs: {name}")
    tied = " (lm_head.weight is the tied embed_tokens.weight)" if "lm_head.weight" not in files and "lm_head.weight" in state else ""
    check(not differ and not missing,
          f"all {len(state)} tensors of the loaded model equal the files' {len(files)} bit for bit{tied}")
    zeros = total = 0
    for name, (dtype, shape, raw) in files.items():
        if len(shape) == 2 and ".layers." in name:
            zeros += int(np.count_nonzero((raw & (0x7FFFFFFF if dtype == "F32" else 0x7FFF)) == 0))
            total += raw.size
    print(f"      block linear layers: {zeros} zeros of {total} ({zeros / max(total, 1):.4%})")

    # 4. A forward on a few tokens, in the file's dtype.
    with torch.no_grad():
        z = model(torch.tensor([tok("It is a truth universally acknowledged", add_special_tokens=False).input_ids])).logits
    check(bool(torch.isfinite(z).all()), f"forward on {z.shape[1]} tokens in {z.dtype}: logits finite")

    # 5. Perplexity in the file's dtype and in float32, against prune eval.
    text = open(a.text, encoding="utf-8").read()
    ids = torch.tensor(tok(text, add_special_tokens=False).input_ids)
    windows = min(a.windows, len(ids) // a.seqlen)
    native, count = perplexity(model, ids, a.seqlen, windows)
    native_dtype = next(model.parameters()).dtype
    wide, _ = (native, count) if file_dtype == torch.float32 else perplexity(model.float(), ids, a.seqlen, windows)
    where = f"{windows} x {a.seqlen} of {os.path.basename(a.text)}"
    print(f"      transformers: perplexity {native:.6f} in {native_dtype}, {wide:.6f} in float32 ({where})")
    if a.prune:
        out = subprocess.run([a.prune, "eval", "--model", a.model, "--text", a.text, "--seqlen", str(a.seqlen),
                              "--windows", str(windows), "--json", "--quiet"], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout)
        rel = abs(r["perplexity"] - wide) / wide
        check(r["tokens"] == count and rel <= 1e-3,
              f"prune eval: perplexity {r['perplexity']:.6f} over {r['tokens']} predictions; relative difference"
              f" {rel:.2e} from transformers in float32, {abs(r['perplexity'] - native) / native:.2e} from it in {native_dtype}")

    # 6. Golden tokenizer ids (SmolLM2).
    if a.golden:
        g = json.load(open(a.golden))
        bad = [s["text"] for s in g["tokenizer_samples"] if tok(s["text"], add_special_tokens=False).input_ids != s["ids"]]
        check(not bad, f"tokenizer: golden ids on {len(g['tokenizer_samples'])} samples" + (f" (differ: {bad})" if bad else ""))
        persuasion = open(os.path.join(REPO, "Fixtures/janeausten/persuasion.txt"), encoding="utf-8").read()
        pid = tok(persuasion, add_special_tokens=False).input_ids
        check(pid[:2048] == g["persuasion_first_2048_ids"] and len(pid) == g["persuasion_token_count"],
              f"tokenizer: persuasion.txt gives {len(pid)} tokens (golden {g['persuasion_token_count']}), first 2048 ids golden")
        with torch.no_grad():
            z = model.float()(torch.tensor([g["logits_input_ids"]])).logits[0]
        worst = 0.0
        for pos, ref in g["logits"].items():
            row = z[int(pos)]
            worst = max(worst, float((row[:16] - torch.tensor(ref["first16"])).abs().max()), abs(float(row.max()) - ref["max"]))
        x = torch.tensor(g["logits_input_ids"])
        nll = float(torch.nn.functional.cross_entropy(z[:-1], x[1:]))
        print(f"      logits vs golden (transformers on the original dequantised model; meaningful for a dense"
              f" F32 output): max |dz| = {worst:.3e}; mean NLL {nll:.9f} vs {g['mean_nll_128']:.9f}")

    print("FAILED: " + "; ".join(failures) if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
