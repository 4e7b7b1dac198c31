#!/usr/bin/env python3
"""Counts the exact zeros of every linear layer in a pruned Hugging Face folder, from the files.

    python3 scripts/check-zeros.py OUT [--expect 0.5]

Reads model.safetensors or the shards named by model.safetensors.index.json with numpy (memory
mapped, one tensor at a time), counts the entries equal to zero (+0 and -0) of every
`model.layers.*.{self_attn,mlp}.*_proj.weight` (LLaMA naming) and prints the total. With
--expect R, exits 1 unless every such tensor has exactly floor(R · rows · columns) zeros per
matrix, or floor(R · columns) in every row (Wanda's row group). An independent check of what
`prune model` reports in pruning-report.json: it shares no code with PruneKit.
"""
import argparse, json, os, re, struct, sys
import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": np.uint16}
LINEAR = re.compile(r"model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\.weight$")


def tensors(folder):
    index = os.path.join(folder, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values())) if os.path.exists(index) else ["model.safetensors"]
    for name in files:
        path = os.path.join(folder, name)
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        data = 8 + n
        for key, info in header.items():
            if key == "__metadata__" or not LINEAR.search(key):
                continue
            start, end = info["data_offsets"]
            rows, cols = info["shape"]
            array = np.memmap(path, dtype=DTYPES[info["dtype"]], mode="r", offset=data + start, shape=(rows, cols))
            yield key, info["dtype"], array


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("folder")
    parser.add_argument("--expect", type=float)
    args = parser.parse_args()
    total = zeros = bad = 0
    for key, dtype, a in tensors(args.folder):
        z_rows = np.zeros(a.shape[0], dtype=np.int64)
        for r0 in range(0, a.shape[0], 1024):
            block = np.asarray(a[r0:r0 + 1024])
            is_zero = (block & 0x7FFF) == 0 if dtype == "BF16" else block == 0
            z_rows[r0:r0 + len(block)] = is_zero.sum(axis=1)
        z = int(z_rows.sum())
        total += a.size
        zeros += z
        if args.expect is not None:
            per_matrix = int(args.expect * a.size) == z
            per_row = bool((z_rows == int(args.expect * a.shape[1])).all())
            if not (per_matrix or per_row):
                bad += 1
                print(f"{key}: {z} zeros of {a.size}", file=sys.stderr)
    print(json.dumps({"linear_weights": total, "zeros": zeros, "fraction": zeros / total if total else 0,
                      "tensors_off_target": bad}))
    sys.exit(1 if bad else 0)


main()
